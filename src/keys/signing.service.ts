/**
 * Signing keys for ID tokens and other JWTs. First start creates one ES256 key; its private JWK is sealed under the
 * master key. The key-rotation issue builds the staged/active/retired lifecycle on this table.
 *
 * Threat note: private keys exist in clear only in process memory; `kid` is the RFC 7638 thumbprint and is bound to
 * the ciphertext as AES-GCM associated data, so a sealed key cannot be swapped onto another row.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { seal, unseal } from './master.ts';
import { insertActiveKeyIfNone, selectPublishedKeys } from './signing.repository.ts';

/** Private JWKs for oidc-provider's `jwks`, active key first. */
export async function loadSigningJwks(db: Kysely<DB>, master: Buffer): Promise<JWK[]> {
  let rows = await selectPublishedKeys(db);
  if (!rows.some((r) => r.state === 'active' && r.alg === 'ES256')) {
    await createActiveKey(db, master, 'ES256');
    rows = await selectPublishedKeys(db);
  }
  const order = (s: string) => (s === 'active' ? 0 : 1);
  return rows
    .sort((a, b) => order(a.state) - order(b.state))
    .map((r) => ({
      ...(JSON.parse(unseal(master, r.privateJwkSealed, r.kid)) as JWK),
      kid: r.kid,
      alg: r.alg,
      use: 'sig',
    }));
}

async function createActiveKey(db: Kysely<DB>, master: Buffer, alg: 'ES256'): Promise<void> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const priv = await exportJWK(privateKey);
  const { d: _d, ...pub } = priv;
  const kid = await calculateJwkThumbprint(pub);
  await insertActiveKeyIfNone(db, {
    kid,
    alg,
    publicJwk: { ...pub, kid, alg, use: 'sig' },
    privateJwkSealed: seal(master, JSON.stringify(priv), kid),
  });
}
