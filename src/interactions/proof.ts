/**
 * Proof that the password step of a level-2 login succeeded, kept between the password page and the second-factor
 * page: a cookie scoped to the interaction's path, MAC'd (HMAC-SHA-256 under the cookie key) over the interaction
 * uid, the account and an expiry, so it cannot be moved to another interaction, account or time. Any node can check it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

const NAME = 'pwd_ok';
const TTL_MS = 10 * 60_000;

export function passwordProof(secret: string) {
  const mac = (uid: string, accountId: string, exp: string) =>
    createHmac('sha256', secret).update(`pwd:${uid}:${accountId}:${exp}`).digest('base64url');
  const path = (uid: string) => `/interaction/${encodeURIComponent(uid)}`;
  return {
    set(ctx: Context, uid: string, accountId: string) {
      const exp = String(Date.now() + TTL_MS);
      ctx.cookies.set(NAME, `${accountId}.${exp}.${mac(uid, accountId, exp)}`, {
        httpOnly: true,
        sameSite: 'lax',
        secure: ctx.secure,
        path: path(uid),
        maxAge: TTL_MS,
        signed: false,
      });
    },
    /** The proven account, or undefined when the cookie is missing, forged, for another interaction or expired. */
    get(ctx: Context, uid: string): string | undefined {
      const [accountId, exp, given] = (ctx.cookies.get(NAME, { signed: false }) ?? '').split('.');
      if (!accountId || !exp || !given || Number(exp) < Date.now()) return undefined;
      const a = Buffer.from(given);
      const b = Buffer.from(mac(uid, accountId, exp));
      return a.length === b.length && timingSafeEqual(a, b) ? accountId : undefined;
    },
    clear(ctx: Context, uid: string) {
      ctx.cookies.set(NAME, null, { path: path(uid), signed: false });
    },
  };
}
