/**
 * A cookie-keeping HTTP agent that plays the citizen's browser for protocol tests (a real browser comes with the
 * portals issue): follows no redirects by itself, so each hop can be asserted.
 */
export class Agent {
  readonly jar = new Map<string, string>();
  /** Rewrites the origin of every request (to talk to another node of the same issuer). */
  origin: string | undefined;

  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url);
    if (this.origin) {
      const o = new URL(this.origin);
      u.protocol = o.protocol;
      u.host = o.host;
    }
    const headers = new Headers(init.headers);
    if (this.jar.size) headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(u, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /expires=thu, 01 jan 1970/i.test(a) || /max-age=0\b/i.test(a.trim()));
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }

  get(url: string | URL) {
    return this.request(url);
  }

  /** Posts a urlencoded form. */
  post(url: string | URL, form: Record<string, string>, headers: Record<string, string> = {}) {
    return this.request(url, {
      method: 'POST',
      body: new URLSearchParams(form).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
  }
}

/** Absolute URL of a redirect. */
export function location(res: Response, base: string): string {
  const loc = res.headers.get('location');
  if (!loc) throw new Error(`expected a redirect, got ${res.status}`);
  return new URL(loc, base).toString();
}

/** The hidden CSRF token in a page. */
export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no csrf field in page');
  return m[1]!;
}

/** The form action of a page's first form posting to `suffix`. */
export function actionOf(html: string, suffix: string): string {
  const m = new RegExp(`action="([^"]*/${suffix})"`).exec(html);
  if (!m) throw new Error(`no form posting to ${suffix}`);
  return m[1]!.replace(/&amp;/g, '&');
}
