/**
 * High-entropy secrets (client secrets, later activation and recovery codes): generated from the CSPRNG, stored only
 * as SHA-256 (a slow hash adds nothing to 256 bits of entropy), compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new random secret, 32 bytes, base64url. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a secret, base64url: what is stored. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/**
 * Constant-time check of a presented secret against its stored SHA-256, or against several separated by spaces (a
 * client's current secret and, during a rotation's grace period, its previous one): every one is compared.
 */
export function secretMatches(presented: string, storedSha256: string): boolean {
  const a = Buffer.from(hashSecret(presented));
  let matches = false;
  for (const stored of storedSha256.split(' ')) {
    const b = Buffer.from(stored);
    matches = (a.length === b.length && timingSafeEqual(a, b)) || matches;
  }
  return matches;
}
