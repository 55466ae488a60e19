/**
 * The secret root: 32 random bytes created on first start, stored sealed under the master key. Cookie keys, the
 * pairwise-subject secret and the personal-ID pseudonym key are derived from it (HKDF), so that every node sharing
 * the database and master key derives the same values, and rewrapping under a new master key changes none of them.
 */
import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/index.ts';
import { seal, unseal } from './master.ts';
import { withKeyLock } from './signing.repository.ts';

const ROOT = 'root';

/** Loads the secret root, creating it on first start (race-safe across nodes). */
export async function loadSecretRoot(db: Kysely<DB>, master: Buffer): Promise<Buffer> {
  await db
    .insertInto('service_secrets')
    .values({ name: ROOT, sealed: seal(master, randomBytes(32).toString('base64'), `secret:${ROOT}`) })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await db
    .selectFrom('service_secrets')
    .select('sealed')
    .where('name', '=', ROOT)
    .executeTakeFirstOrThrow();
  try {
    return Buffer.from(unseal(master, row.sealed, `secret:${ROOT}`), 'base64');
  } catch {
    throw new Error("MASTER_KEY: the master key does not open this database's secrets (wrong or replaced key file?)");
  }
}

const COOKIE_GENERATION = 'cookie_generation';

/** The current cookie-key generation (0 until the first rotation). */
export async function cookieGeneration(db: Kysely<DB>, master: Buffer): Promise<number> {
  const row = await db
    .selectFrom('service_secrets')
    .select('sealed')
    .where('name', '=', COOKIE_GENERATION)
    .executeTakeFirst();
  return row ? Number(unseal(master, row.sealed, `secret:${COOKIE_GENERATION}`)) : 0;
}

/**
 * Starts a new cookie-key generation; the previous one keeps verifying. Returns the new generation. In its own
 * transaction, or the caller's (nodes are notified when it commits).
 */
export async function rotateCookieKeys(db: Kysely<DB>, master: Buffer): Promise<number> {
  return withKeyLock(db, async (trx) => {
    const next = (await cookieGeneration(trx, master)) + 1;
    const sealed = seal(master, String(next), `secret:${COOKIE_GENERATION}`);
    await trx
      .insertInto('service_secrets')
      .values({ name: COOKIE_GENERATION, sealed })
      .onConflict((oc) => oc.column('name').doUpdateSet({ sealed }))
      .execute();
    await sql`select pg_notify('dinhdanh_keys', 'changed')`.execute(trx);
    return next;
  });
}

/** Re-seals every service secret under a new master key (inside the caller's transaction). */
export async function rewrapSecrets(db: Kysely<DB>, from: Buffer, to: Buffer): Promise<number> {
  const rows = await db.selectFrom('service_secrets').select(['name', 'sealed']).execute();
  for (const r of rows) {
    const plain = unseal(from, r.sealed, `secret:${r.name}`);
    await db
      .updateTable('service_secrets')
      .set({ sealed: seal(to, plain, `secret:${r.name}`) })
      .where('name', '=', r.name)
      .execute();
  }
  return rows.length;
}
