/**
 * A portal's own public keys, with which it signs its client assertions (`private_key_jwt`): a JWK Set given at
 * registration, or the URL where the portal publishes it (`jwks_uri`).
 *
 * Threat note: what is registered here is trusted to authenticate the portal. Only public signature keys of the types
 * the provider verifies are accepted (EC P-256 for ES256; RSA of at least 2048 bits for PS256 and RS256), each named by
 * a `kid`; a private key (the portal's secret, mistakenly sent) and a symmetric key are refused, never stored. A
 * `jwks_uri` is https in production; http only on loopback outside production (development, tests).
 */
import { importJWK, type JWK } from 'jose';
import { AppError } from '../errors.ts';

/** What a portal's signature key may be used with, by key type. */
const ALGS: Record<string, readonly string[]> = { EC: ['ES256'], RSA: ['PS256', 'RS256'] };

/** Members that hold private key material (RFC 7518 section 6), in any key type. */
const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The members kept of each key type: the public key, its name and its intended use. */
const KEPT: Record<string, readonly string[]> = {
  EC: ['kty', 'kid', 'use', 'alg', 'crv', 'x', 'y'],
  RSA: ['kty', 'kid', 'use', 'alg', 'n', 'e'],
};

const MAX_KEYS = 10;
const MIN_RSA_BITS = 2048;

const refuse = (message: string) => new AppError('invalid_input', `JWK Set: ${message}`);

/**
 * Checks a JWK Set of a portal's public signature keys; returns it with only the public members of each key.
 * Throws one line naming the first problem.
 */
export async function checkJwks(value: unknown): Promise<{ keys: JWK[] }> {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (typeof value !== 'object' || !Array.isArray(keys)) throw refuse('must be an object with a "keys" array');
  if (!keys.length) throw refuse('has no key');
  if (keys.length > MAX_KEYS) throw refuse(`has ${keys.length} keys (at most ${MAX_KEYS})`);
  const kids = new Set<string>();
  const out: JWK[] = [];
  for (const [i, key] of keys.entries()) {
    const jwk = key as Record<string, unknown>;
    const name = typeof jwk?.kid === 'string' && jwk.kid ? `key "${jwk.kid}"` : `key ${i + 1}`;
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw refuse(`${name} is not a JSON object`);
    if (jwk.kty === 'oct') throw refuse(`${name} is a symmetric key (kty "oct"): register public keys only`);
    const secret = PRIVATE.find((m) => m in jwk);
    if (secret)
      throw refuse(
        `${name} contains private key material ("${secret}"): register the public key only, keep the private key with the portal`,
      );
    const algs = ALGS[String(jwk.kty)];
    if (!algs)
      throw refuse(
        `${name} has key type ${JSON.stringify(jwk.kty)}: accepted are EC (P-256) and RSA (2048 bits or more)`,
      );
    if (typeof jwk.kid !== 'string' || !jwk.kid || jwk.kid.length > 200)
      throw refuse(`${name} needs a "kid" (1 to 200 characters) to name it`);
    if (kids.has(jwk.kid)) throw refuse(`${name}: the kid is used twice`);
    kids.add(jwk.kid);
    if (jwk.use !== undefined && jwk.use !== 'sig')
      throw refuse(`${name} has "use" ${JSON.stringify(jwk.use)}: must be "sig"`);
    if (jwk.alg !== undefined && !algs.includes(String(jwk.alg)))
      throw refuse(`${name} has "alg" ${JSON.stringify(jwk.alg)}: a ${jwk.kty} key may be ${algs.join(' or ')}`);
    if (jwk.kty === 'EC' && jwk.crv !== 'P-256')
      throw refuse(`${name} is on curve ${JSON.stringify(jwk.crv)}: EC keys must be P-256 (ES256)`);
    const kept = Object.fromEntries(KEPT[jwk.kty as string]!.filter((m) => m in jwk).map((m) => [m, jwk[m]])) as JWK;
    const bits = await publicKeyBits(kept, (jwk.alg as string | undefined) ?? algs[0]!, name);
    if (jwk.kty === 'RSA' && bits < MIN_RSA_BITS)
      throw refuse(`${name} is an RSA key of ${bits} bits: at least ${MIN_RSA_BITS} are required`);
    out.push(kept);
  }
  return { keys: out };
}

/** Imports the key (so a malformed one is refused here, not at the first sign-in); RSA: its modulus length. */
async function publicKeyBits(jwk: JWK, alg: string, name: string): Promise<number> {
  try {
    const key = (await importJWK(jwk, alg)) as { algorithm?: { modulusLength?: number } };
    return key.algorithm?.modulusLength ?? 0;
  } catch (cause) {
    throw new AppError('invalid_input', `JWK Set: ${name} is not a valid ${jwk.kty} public key`, { cause });
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a URL names this machine (the only place a development jwks_uri may be plain http). */
export const isLoopback = (url: URL) => LOOPBACK.has(url.hostname);

/**
 * Checks where a portal publishes its keys: https (production: on a host that is not this machine); outside
 * production also http on loopback.
 */
export function checkJwksUri(value: string, production: boolean): string {
  if (!URL.canParse(value)) throw new AppError('invalid_input', `jwks_uri is not a URL: ${value}`);
  const u = new URL(value);
  if (u.hash || u.username || u.password)
    throw new AppError('invalid_input', `jwks_uri must have no fragment and no credentials: ${value}`);
  if (production) {
    if (u.protocol !== 'https:' || isLoopback(u))
      throw new AppError('invalid_input', `jwks_uri must be an https URL of the portal (production): ${value}`);
    return value;
  }
  if (u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(u))) return value;
  throw new AppError('invalid_input', `jwks_uri must be https (http only on localhost, outside production): ${value}`);
}
