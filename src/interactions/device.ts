/**
 * Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a browser that once proved a
 * personal ID's password is limited under a key of its own for that ID, so failures and locks caused by other
 * browsers (anyone who knows the 12-digit number) never lock the citizen's own browser out, and its own failures lock
 * only itself.
 *
 * Threat note: an entry is `nonce.expiry.mac`, the MAC being HMAC-SHA-256 (under a key derived from the cookie/CSRF
 * secret) over the limiter key (the personal ID's pseudonym), the random nonce and the expiry; the key itself is not
 * in the cookie. Entries are issued only after a correct password, so an unknown ID never gets one (no enumeration),
 * and one cannot be forged, moved to another ID or extended. A stolen entry gives its thief that device's limit (N
 * guesses per lock), no more. One cookie holds entries for the MAX_ENTRIES most recently proven IDs (a shared family
 * phone), newest first; older ones drop out. Each correct password renews the browser's entry for that ID (new nonce).
 */
import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

const NAME = 'device';
const PATH = '/interaction';
const TTL_MS = 180 * 86_400_000;
/** IDs one browser is known for; also bounds the MACs computed per attempt. */
const MAX_ENTRIES = 5;
const ENTRY = /^([\w-]{22})\.(\d{13})\.([\w-]{43})$/;

/** Where a login attempt is limited: the browser's own key for this ID, or the key shared by unknown browsers. */
export interface DeviceKey {
  /** The key to pass to the limiter. */
  key: string;
  /** For the audit trail: whether the browser presented a valid entry for this ID. */
  device: 'known' | 'unknown';
}

/** Device cookies MAC'd under a key derived from `secret` (the service's cookie/CSRF secret). */
export function deviceCookies(secret: string) {
  // A KeyObject: made once, not from raw bytes at each MAC (up to MAX_ENTRIES + 1 of them per attempt).
  const macKey = createSecretKey(
    Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'dinhdanh device cookie v1', 32)),
  );
  const mac = (key: string, nonce: string, exp: string) =>
    createHmac('sha256', macKey).update(`device:${key}:${nonce}:${exp}`).digest('base64url');
  /** Well-formed, unexpired entries, newest first, at most MAX_ENTRIES. */
  const entries = (ctx: Context) =>
    (ctx.cookies.get(NAME, { signed: false }) ?? '')
      .split('~')
      .slice(0, MAX_ENTRIES)
      .flatMap((raw) => {
        const m = ENTRY.exec(raw);
        return m && Number(m[2]) > Date.now() ? [{ raw, nonce: m[1]!, exp: m[2]!, given: m[3]! }] : [];
      });
  const isFor = (key: string, e: { nonce: string; exp: string; given: string }) =>
    timingSafeEqual(Buffer.from(e.given), Buffer.from(mac(key, e.nonce, e.exp)));

  return {
    /** The limiter key for an attempt on `key` from this browser. */
    limiterKey(ctx: Context, key: string): DeviceKey {
      const entry = entries(ctx).find((e) => isFor(key, e));
      return entry ? { key: `${key}:device:${entry.nonce}`, device: 'known' } : { key, device: 'unknown' };
    },
    /** After a correct password for `key`: a new entry (new nonce) first, this ID's old one dropped, others kept. */
    issue(ctx: Context, key: string) {
      const nonce = randomBytes(16).toString('base64url');
      const exp = String(Date.now() + TTL_MS);
      const others = entries(ctx)
        .filter((e) => !isFor(key, e))
        .map((e) => e.raw);
      ctx.cookies.set(NAME, [`${nonce}.${exp}.${mac(key, nonce, exp)}`, ...others].slice(0, MAX_ENTRIES).join('~'), {
        httpOnly: true,
        sameSite: 'lax',
        secure: ctx.secure,
        path: PATH,
        maxAge: TTL_MS,
        signed: false,
      });
    },
  };
}
