/**
 * Tokens at rest. Threat: a copy of the database (a backup, a dump, a read replica, an injection) must yield no
 * usable bearer artefact. Access and refresh tokens, codes, PAR request URIs, device codes, session and interaction
 * ids are stored under a keyed hash of their value (HMAC-SHA-256 under a key derived from the secret root, which is
 * sealed under the master key), never as themselves. Sessions and device codes, which oidc-provider also finds by
 * another column (uid, user code) and must get their id back from, keep the value sealed (AES-256-GCM, same key)
 * in the payload; the others keep it nowhere. Grants, replay records and clients are not bearer secrets and stay as they are.
 */
import { createHmac, createSecretKey } from 'node:crypto';
import { seal, unseal } from '../keys/index.ts';

/** Models whose id is a bearer secret. */
export const BEARER_MODELS = new Set([
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'ClientCredentials',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PushedAuthorizationRequest',
  'Session',
  'Interaction',
]);

/** Bearer models oidc-provider also finds by uid or user code (it must get their id back from the row). */
const FOUND_OTHERWISE = new Set(['Session', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Prefix of a hashed row id (rows written before hashing have none). */
export const HASHED = 'h.';

/** How rows of bearer models are keyed and their ids kept. */
export interface TokenVault {
  /** The row id of `value` in `model`. */
  rowId(model: string, value: string): string;
  /** The payload as stored: the id sealed, never in clear. */
  stored(model: string, value: string, payload: Record<string, unknown>): Record<string, unknown>;
  /** The payload as oidc-provider expects it, with its id back (from the sealed copy, or the known value). */
  restored(model: string, payload: Record<string, unknown>, value?: string): Record<string, unknown>;
}

/** A vault over `key` (32 bytes, derived from the secret root). */
export function tokenVault(raw: Buffer): TokenVault {
  // A KeyObject, made once: HMAC and AES-GCM with it cost a few microseconds (a Buffer key, about five times more).
  const key = createSecretKey(raw);
  const rowId = (model: string, value: string) =>
    `${HASHED}${createHmac('sha256', key).update(`${model}\u0000${value}`).digest('base64url')}`;
  return {
    rowId: (model, value) => (BEARER_MODELS.has(model) ? rowId(model, value) : value),
    stored(model, value, payload) {
      if (!BEARER_MODELS.has(model)) return payload;
      const { jti: _jti, ...rest } = payload;
      // Only what is looked up by another column needs its id back from the row: seal it for those alone.
      return FOUND_OTHERWISE.has(model) ? { ...rest, jtiSealed: seal(key, value, `oidc:${model}`) } : rest;
    },
    restored(model, payload, value) {
      if (!BEARER_MODELS.has(model)) return payload;
      const { jtiSealed, ...rest } = payload;
      if (value !== undefined) return { ...rest, jti: value };
      return typeof jtiSealed === 'string' ? { ...rest, jti: unseal(key, jtiSealed, `oidc:${model}`) } : payload;
    },
  };
}
