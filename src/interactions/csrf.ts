/**
 * CSRF protection for interaction forms: a token bound to the interaction (HMAC of its uid under the cookie key),
 * checked in constant time on every POST, plus `Sec-Fetch-Site` where the browser sends it. The interaction cookie
 * itself is checked by oidc-provider, so a token from one interaction is useless for another browser's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { AppError } from '../errors.ts';

/** Token for the form of interaction `uid`. */
export function csrfToken(secret: string, uid: string): string {
  return createHmac('sha256', secret).update(`csrf:${uid}`).digest('base64url');
}

/** Koa middleware: rejects a POST whose token or fetch metadata does not match. */
export function requireCsrf(secret: string) {
  return async (ctx: Context, next: Next) => {
    const site = ctx.get('sec-fetch-site');
    if (site && site !== 'same-origin' && site !== 'none') throw new AppError('csrf', 'cross-site form post refused');
    const body = ctx.request.body as Record<string, unknown> | undefined;
    const given = Buffer.from(typeof body?.csrf === 'string' ? body.csrf : '');
    const expected = Buffer.from(csrfToken(secret, String(ctx.params.uid)));
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new AppError('csrf', 'missing or wrong CSRF token');
    await next();
  };
}
