/**
 * Tokens at rest. Threat: a copy of the database (a backup, a dump, a read replica, an injection) must yield no
 * usable bearer artefact. Access and refresh tokens, codes, PAR request URIs, device codes, session and interaction
 * ids are stored under a keyed hash of their value (HMAC-SHA-256 under a key derived from the secret root, which is
 * sealed under the master key), never as themselves; the value is kept only sealed (AES-256-GCM, same key) inside the
 * payload, because oidc-provider finds sessions and device codes by another column (uid, user code) and must get
 * their id back. Grants, replay records and clients are not bearer secrets and stay as they are.
 */
import { createHmac } from 'node:crypto';
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
export function tokenVault(key: Buffer): TokenVault {
  const rowId = (model: string, value: string) =>
    `${HASHED}${createHmac('sha256', key).update(`${model}\u0000${value}`).digest('base64url')}`;
  return {
    rowId: (model, value) => (BEARER_MODELS.has(model) ? rowId(model, value) : value),
    stored(model, value, payload) {
      if (!BEARER_MODELS.has(model)) return payload;
      const { jti: _jti, ...rest } = payload;
      return { ...rest, jtiSealed: seal(key, value, `oidc:${model}`) };
    },
    restored(model, payload, value) {
      if (!BEARER_MODELS.has(model) || typeof payload.jtiSealed !== 'string') return payload;
      const { jtiSealed, ...rest } = payload;
      return { ...rest, jti: value ?? unseal(key, jtiSealed, `oidc:${model}`) };
    },
  };
}
