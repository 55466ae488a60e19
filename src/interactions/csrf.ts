/**
 * CSRF protection for every form: a token bound to something the attacker's page cannot know or set — the
 * interaction uid (whose cookie oidc-provider checks) or a random per-browser nonce in a signed, HttpOnly cookie —
 * as an HMAC under the cookie key, compared in constant time on every POST, plus `Sec-Fetch-Site` where the browser
 * sends it.
 */
import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { AppError } from '../errors.ts';

const NONCE_COOKIE = 'form_nonce';

/** The secret as a KeyObject, made once per secret (not from the string at each token). */
const keys = new Map<string, KeyObject>();
const keyOf = (secret: string) => {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret));
    if (keys.size > 16) keys.clear(); // a node has one secret (tests make several)
    keys.set(secret, key);
  }
  return key;
};

/** Token for a form bound to `binding`. */
export function csrfToken(secret: string, binding: string): string {
  return createHmac('sha256', keyOf(secret)).update(`csrf:${binding}`).digest('base64url');
}

/** The browser's form nonce, created (signed cookie) on first use. */
export function formNonce(ctx: Context): string {
  let nonce = ctx.cookies.get(NONCE_COOKIE, { signed: true });
  if (!nonce || !/^[\w-]{22}$/.test(nonce)) {
    nonce = randomBytes(16).toString('base64url');
    ctx.cookies.set(NONCE_COOKIE, nonce, { signed: true, httpOnly: true, sameSite: 'lax', secure: ctx.secure });
  }
  return nonce;
}

/** Binding for interaction forms: the uid in the path. */
export const byInteraction = (ctx: Context) => String(ctx.params.uid);
/** Binding for other forms: the browser's nonce cookie (a POST without it fails). */
export const byNonce = (ctx: Context) => ctx.cookies.get(NONCE_COOKIE, { signed: true }) ?? '';

/** Koa middleware: rejects a POST whose token or fetch metadata does not match. */
export function requireCsrf(secret: string, binding: (ctx: Context) => string) {
  return async (ctx: Context, next: Next) => {
    const site = ctx.get('sec-fetch-site');
    if (site && site !== 'same-origin' && site !== 'none') throw new AppError('csrf', 'cross-site form post refused');
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const given = Buffer.from(typeof body?.csrf === 'string' ? body.csrf : '');
    const bound = binding(ctx);
    const expected = Buffer.from(csrfToken(secret, bound));
    if (!bound || given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new AppError('csrf', 'missing or wrong CSRF token');
    await next();
  };
}
