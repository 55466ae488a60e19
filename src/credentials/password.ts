/**
 * Password hashing behind an interface: argon2id in production (OWASP parameters by default).
 *
 * Threat note: `verifyOrDummy` runs argon2 even when there is no account, against a dummy hash made with the same
 * parameters, so an unknown personal ID and a wrong password take the same path and the same time.
 */
import argon2 from 'argon2';

/** Hashes and verifies passwords. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies `password` against `hash`; with `hash` null, burns the same time against a dummy and returns false. */
  verifyOrDummy(hash: string | null, password: string): Promise<boolean>;
  /** True when `hash` was made with other parameters than the current ones (upgrade it at the next login). */
  needsRehash(hash: string): boolean;
}

/** argon2id costs. */
export interface Argon2Options {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** The longest password accepted; argon2 input beyond this only costs the server. */
export const MAX_PASSWORD_LENGTH = 256;

/** An argon2id hasher with the given costs. */
export async function argon2idHasher(opts: Argon2Options): Promise<PasswordHasher> {
  const params = { type: argon2.argon2id as 2, ...opts };
  const dummy = await argon2.hash('dummy password, never matches', params);
  return {
    hash: (password) => argon2.hash(password, params),
    needsRehash: (hash) => argon2.needsRehash(hash, params),
    async verifyOrDummy(hash, password) {
      try {
        const ok = await argon2.verify(hash ?? dummy, password);
        return hash !== null && ok;
      } catch {
        return false; // a malformed stored hash never authenticates
      }
    },
  };
}
