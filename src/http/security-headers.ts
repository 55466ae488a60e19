/**
 * The security headers of every response, computed once by helmet at start-up (its options are static, so its
 * output is too) and then set from a frozen table: no per-request middleware chain for constant headers.
 *
 * What this enforces: strict CSP without inline script or style (`default-src 'none'`, `script-src 'self'`: the few
 * scripts are same-origin files, e.g. the form_post page's, see src/oidc/pages.ts), no framing, no referrer, nosniff;
 * HSTS only on responses that went out over https (an http response cannot set it, and localhost must stay usable).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

const middleware = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      'default-src': ["'none'"],
      // Scripts only from this origin. oidc-provider adds the hash of its inline form_post auto-submit here;
      // src/oidc/pages.ts re-renders that page with a same-origin script and takes the hash out again.
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'img-src': ["'self'"],
      // passkey.js fetches its WebAuthn options from this origin only.
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'frame-ancestors': ["'none'"],
      // no form-action: after a form post the browser follows redirects to the portal's redirect_uri
    },
  },
  strictTransportSecurity: { maxAge: 31536000, includeSubDomains: true },
  referrerPolicy: { policy: 'no-referrer' },
  crossOriginResourcePolicy: false,
});

/** Runs helmet once against a recorder and returns the headers it sets. */
function record(): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string | number) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader() {},
  };
  let called = false;
  middleware({} as IncomingMessage, res as unknown as ServerResponse, () => {
    called = true;
  });
  if (!called) throw new Error('helmet did not complete synchronously');
  return headers;
}

const all = record();
const { 'strict-transport-security': _hsts, ...plain } = all;

/** Headers for a response over https (with HSTS). */
export const SECURE_HEADERS: Readonly<Record<string, string>> = Object.freeze(all);
/** Headers for a response over plain http (no HSTS). */
export const PLAIN_HEADERS: Readonly<Record<string, string>> = Object.freeze(plain);
