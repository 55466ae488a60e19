/**
 * Signed cookies (`name.sig`) as keygrip makes them, which Koa and oidc-provider use by default: HMAC-SHA-1 of
 * `name=value` under the first key, base64url without padding; any key of the list verifies (rotation: the new key
 * first, the previous ones after). Same signatures as keygrip, so nodes of the previous version and this one read
 * each other's cookies.
 *
 * Why not keygrip itself: it imports the key again for every HMAC and compares with tsscmp, which makes two more
 * HMACs under a fresh random key: about 10 µs per HMAC, three per signed cookie read, several cookies per page (6-13%
 * of a login page's and an authorization's CPU). Here each key is a KeyObject made once and the comparison is
 * `timingSafeEqual` over the two digests (fixed length: a length mismatch is a forged value, refused at once).
 */
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

/** What Koa's and oidc-provider's `keys` accept in place of a key list. */
export interface CookieSigner {
  sign(data: string): string;
  verify(data: string, digest: string): boolean;
  index(data: string, digest: string): number;
}

const signers = new WeakMap<readonly string[], CookieSigner>();

/** A signer over `keys` (the first signs; each verifies), made once per list. */
export function cookieSigner(keys: readonly string[]): CookieSigner {
  const known = signers.get(keys);
  if (known) return known;
  if (!keys.length) throw new Error('cookie keys must not be empty');
  const objects: KeyObject[] = keys.map((k) => createSecretKey(Buffer.from(k, 'utf8')));
  const mac = (data: string, key: KeyObject) => createHmac('sha1', key).update(data).digest();
  const signer: CookieSigner = {
    sign: (data) => mac(data, objects[0]!).toString('base64url'),
    verify: (data, digest) => signer.index(data, digest) > -1,
    index(data, digest) {
      if (typeof digest !== 'string') return -1;
      const presented = Buffer.from(digest, 'base64url');
      // base64url decoding skips what is not in its alphabet: only the canonical spelling of 20 bytes is accepted.
      if (presented.length !== 20 || presented.toString('base64url') !== digest) return -1;
      for (const [i, key] of objects.entries()) if (timingSafeEqual(presented, mac(data, key))) return i;
      return -1;
    },
  };
  signers.set(keys, signer);
  return signer;
}
