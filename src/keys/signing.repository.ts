/** Queries over `signing_keys`. State changes run in transactions under an advisory lock (one writer at a time). */
import { type Kysely, sql, type Transaction } from 'kysely';
import type { DB } from '../db/index.ts';

/** A signing key row as the service sees it. */
export interface SigningKeyRow {
  kid: string;
  alg: string;
  state: 'staged' | 'active' | 'retired' | 'removed' | 'revoked';
  publicJwk: Record<string, unknown>;
  privateJwkSealed: string;
  autoActivate: boolean;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  removedAt: Date | null;
  revokedAt: Date | null;
}

const toRow = (r: {
  kid: string;
  alg: string;
  state: string;
  public_jwk: Record<string, unknown>;
  private_jwk_sealed: string;
  auto_activate: boolean;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  removed_at: Date | null;
  revoked_at: Date | null;
}): SigningKeyRow => ({
  kid: r.kid,
  alg: r.alg,
  state: r.state as SigningKeyRow['state'],
  publicJwk: r.public_jwk,
  privateJwkSealed: r.private_jwk_sealed,
  autoActivate: r.auto_activate,
  createdAt: new Date(r.created_at),
  activatedAt: r.activated_at && new Date(r.activated_at),
  retiredAt: r.retired_at && new Date(r.retired_at),
  removedAt: r.removed_at,
  revokedAt: r.revoked_at,
});

/** Every key, newest first. */
export async function selectKeys(db: Kysely<DB>): Promise<SigningKeyRow[]> {
  const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').execute();
  return rows.map((r) => toRow(r as never));
}

/** A short fingerprint of every key's state and of the cookie-key generation: when it changes, nodes reload. */
export async function keysFingerprint(db: Kysely<DB>): Promise<string> {
  const r = await sql<{
    f: string | null;
  }>`select md5(coalesce((select string_agg(kid || ':' || state, ',' order by kid) from signing_keys), '')
      || coalesce((select sealed from service_secrets where name = 'cookie_generation'), '')) as f`.execute(db);
  return r.rows[0]?.f ?? '';
}

/**
 * Runs `fn` in a transaction holding the key-lifecycle lock: a new one, or the caller's (an audited operator act),
 * where the lock is then held until the caller commits.
 */
export function withKeyLock<T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  const run = async (trx: Transaction<DB>) => {
    await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:signing-keys'))`.execute(trx);
    return fn(trx);
  };
  return db.isTransaction ? run(db as Transaction<DB>) : db.transaction().execute(run);
}

/** Like withKeyLock, but returns undefined at once when another node holds the lock (scheduled transitions). */
export function tryWithKeyLock<T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T | undefined> {
  return db.transaction().execute(async (trx) => {
    const r = await sql<{
      ok: boolean;
    }>`select pg_try_advisory_xact_lock(hashtext('dinhdanh:signing-keys')) as ok`.execute(trx);
    return r.rows[0]?.ok ? fn(trx) : undefined;
  });
}

export async function insertKey(
  db: Kysely<DB>,
  k: {
    kid: string;
    alg: string;
    state: 'staged' | 'active';
    publicJwk: object;
    privateJwkSealed: string;
    autoActivate: boolean;
    operator: string | null;
  },
): Promise<void> {
  await db
    .insertInto('signing_keys')
    .values({
      kid: k.kid,
      alg: k.alg,
      state: k.state,
      public_jwk: JSON.stringify(k.publicJwk),
      private_jwk_sealed: k.privateJwkSealed,
      auto_activate: k.autoActivate,
      activated_at: k.state === 'active' ? new Date() : null,
      operator: k.operator,
    })
    .execute();
}

/** Sets a key's state and the matching timestamp. */
export async function setKeyState(db: Kysely<DB>, kid: string, state: SigningKeyRow['state']): Promise<void> {
  const now = new Date();
  const stamp =
    state === 'active'
      ? { activated_at: now }
      : state === 'retired'
        ? { retired_at: now }
        : state === 'removed'
          ? { removed_at: now }
          : state === 'revoked'
            ? { revoked_at: now }
            : {};
  await db
    .updateTable('signing_keys')
    .set({ state, ...stamp })
    .where('kid', '=', kid)
    .execute();
}

export async function updateSealed(db: Kysely<DB>, kid: string, sealed: string): Promise<void> {
  await db.updateTable('signing_keys').set({ private_jwk_sealed: sealed }).where('kid', '=', kid).execute();
}

/** Tells every node listening that the key set changed. */
export async function notifyKeysChanged(db: Kysely<DB>): Promise<void> {
  await sql`select pg_notify('dinhdanh_keys', 'changed')`.execute(db);
}
