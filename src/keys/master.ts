/**
 * The master key: 32 bytes that seal signing keys at rest (AES-256-GCM). It never enters the database.
 * From MASTER_KEY, or from MASTER_KEY_FILE (created 0600 on first start outside production).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, type KeyObject, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';

/** Loads (or, outside production, creates) the master key. */
export function loadMasterKey(config: Config): Buffer {
  if (config.masterKey) return Buffer.from(config.masterKey, 'base64');
  const file = config.masterKeyFile;
  if (!fs.existsSync(file)) {
    if (config.env === 'production') throw new Error(`MASTER_KEY_FILE: ${file} does not exist`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    try {
      fs.writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process created it first
    }
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`MASTER_KEY_FILE: ${file} must hold 32 bytes in base64`);
  return key;
}

/** Encrypts `plaintext` with AES-256-GCM; `aad` binds the ciphertext to its row (e.g. the kid). */
export function seal(key: Buffer | KeyObject, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return ['v1', iv.toString('base64url'), body.toString('base64url'), c.getAuthTag().toString('base64url')].join('.');
}

/** Decrypts what `seal` produced; throws if the key, aad or ciphertext is wrong. */
export function unseal(key: Buffer | KeyObject, sealed: string, aad: string): string {
  const [v, iv, body, tag] = sealed.split('.');
  if (v !== 'v1' || !iv || !body || !tag) throw new Error('sealed value has an unknown format');
  const ivBytes = Buffer.from(iv, 'base64url');
  const tagBytes = Buffer.from(tag, 'base64url');
  if (ivBytes.length !== 12 || tagBytes.length !== 16) throw new Error('sealed value has a wrong IV or tag length');
  const d = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: 16 });
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(tagBytes);
  return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
}

/**
 * Cookie signing keys derived from the secret root (shared by every node of one installation): the current
 * generation signs, the previous one still verifies (the grace period lasts until the next rotation).
 */
export function deriveCookieKeys(root: Buffer, generation = 0): string[] {
  const key = (g: number) =>
    Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `dinhdanh cookie key v1/${g}`, 32)).toString('base64url');
  return generation > 0 ? [key(generation), key(generation - 1)] : [key(0)];
}

/** The CSRF token secret, derived from the secret root (stable across cookie-key rotations). */
export function deriveCsrfSecret(root: Buffer): string {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'dinhdanh csrf v1', 32)).toString('base64url');
}

/**
 * A keyed pseudonym of a personal identification number (HMAC-SHA-256 under a key derived from the secret root):
 * lets rate limits and the audit trail follow one number without storing it.
 */
export function pinPseudonymizer(root: Buffer): (pin: string) => string {
  const key = Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'dinhdanh pin pseudonym v1', 32));
  return (pin) => `pid:${createHmac('sha256', key).update(pin).digest('base64url').slice(0, 22)}`;
}

/** The pairwise-subject secret derived from the secret root (when PAIRWISE_SECRET is not set). */
export function derivePairwiseSecret(root: Buffer): string {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'dinhdanh pairwise sub v1', 32)).toString('base64url');
}

/** The key that hashes and seals bearer tokens at rest (oidc/token-at-rest.ts), derived from the secret root. */
export function deriveTokenKey(root: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'dinhdanh tokens at rest v1', 32));
}

/** The key that hashes one-time verification codes (SMS, officer reset codes), derived from the secret root. */
export function deriveCodeKey(root: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), 'dinhdanh verification codes v1', 32));
}
