/** Queries over `signing_keys`. */
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/index.ts';

export interface SigningKeyRow {
  kid: string;
  alg: string;
  state: string;
  publicJwk: Record<string, unknown>;
  privateJwkSealed: string;
}

export async function selectPublishedKeys(db: Kysely<DB>): Promise<SigningKeyRow[]> {
  const rows = await db
    .selectFrom('signing_keys')
    .select(['kid', 'alg', 'state', 'public_jwk', 'private_jwk_sealed'])
    .where('state', 'in', ['staged', 'active', 'retired'])
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map((r) => ({
    kid: r.kid,
    alg: r.alg,
    state: r.state,
    publicJwk: r.public_jwk,
    privateJwkSealed: r.private_jwk_sealed,
  }));
}

/** Inserts an active key unless an active key of that algorithm already exists (first start on several nodes). */
export async function insertActiveKeyIfNone(
  db: Kysely<DB>,
  k: { kid: string; alg: string; publicJwk: Record<string, unknown>; privateJwkSealed: string },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // Serialize first starts of several nodes: only one creates the key.
    await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:signing-keys'))`.execute(trx);
    const existing = await trx
      .selectFrom('signing_keys')
      .select('kid')
      .where('alg', '=', k.alg)
      .where('state', '=', 'active')
      .executeTakeFirst();
    if (existing) return;
    await trx
      .insertInto('signing_keys')
      .values({
        kid: k.kid,
        alg: k.alg,
        state: 'active',
        public_jwk: JSON.stringify(k.publicJwk),
        private_jwk_sealed: k.privateJwkSealed,
        activated_at: new Date(),
      })
      .execute();
  });
}
