/** Queries over `clients`. */
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/index.ts';

/** The channel on which a change to a registered client is announced (delivered when its transaction commits). */
export const CLIENT_CHANGES_CHANNEL = 'dinhdanh_clients';

/** A stored relying portal, as the service sees it. */
export interface StoredClient {
  clientId: string;
  name: string;
  metadata: Record<string, unknown>;
  secretSha256: string | null;
  /** During a secret rotation's grace period: the previous secret's SHA-256 and when it stops working. */
  previousSecretSha256: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
}

export async function insertClient(
  db: Kysely<DB>,
  c: { clientId: string; name: string; metadata: Record<string, unknown>; secretSha256: string | null },
): Promise<void> {
  await db
    .insertInto('clients')
    .values({
      client_id: c.clientId,
      name: c.name,
      metadata: JSON.stringify(c.metadata),
      secret_sha256: c.secretSha256,
    })
    .execute();
}

export async function upsertClient(
  db: Kysely<DB>,
  c: { clientId: string; name: string; metadata: Record<string, unknown>; secretSha256: string | null },
): Promise<void> {
  const row = { name: c.name, metadata: JSON.stringify(c.metadata), secret_sha256: c.secretSha256 };
  await db
    .insertInto('clients')
    .values({ client_id: c.clientId, ...row })
    .onConflict((oc) => oc.column('client_id').doUpdateSet({ ...row, updated_at: new Date() }))
    .execute();
}

export async function selectClient(db: Kysely<DB>, clientId: string): Promise<StoredClient | undefined> {
  const r = await db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  return r && toClient(r);
}

/** The client, its row locked until the transaction ends (changes to one client happen one at a time). */
export async function selectClientForUpdate(db: Kysely<DB>, clientId: string): Promise<StoredClient | undefined> {
  const r = await db.selectFrom('clients').selectAll().where('client_id', '=', clientId).forUpdate().executeTakeFirst();
  return r && toClient(r);
}

/** Replaces what is registered for a client (name, metadata, secrets). */
export async function updateClientRow(
  db: Kysely<DB>,
  c: {
    clientId: string;
    name: string;
    metadata: Record<string, unknown>;
    secretSha256: string | null;
    previousSecretSha256: string | null;
    previousSecretExpiresAt: Date | null;
  },
): Promise<void> {
  await db
    .updateTable('clients')
    .set({
      name: c.name,
      metadata: JSON.stringify(c.metadata),
      secret_sha256: c.secretSha256,
      previous_secret_sha256: c.previousSecretSha256,
      previous_secret_expires_at: c.previousSecretExpiresAt,
      updated_at: new Date(),
    })
    .where('client_id', '=', c.clientId)
    .execute();
}

/** Tells every node that a client changed (on commit of the caller's transaction; never if it rolls back). */
export async function notifyClientChanged(db: Kysely<DB>, clientId: string): Promise<void> {
  await sql`select pg_notify(${CLIENT_CHANGES_CHANNEL}, ${clientId})`.execute(db);
}

export async function selectClients(db: Kysely<DB>): Promise<StoredClient[]> {
  return (await db.selectFrom('clients').selectAll().orderBy('created_at').execute()).map(toClient);
}

function toClient(r: {
  client_id: string;
  name: string;
  metadata: Record<string, unknown>;
  secret_sha256: string | null;
  previous_secret_sha256: string | null;
  previous_secret_expires_at: Date | string | null;
  created_at: Date | string;
}): StoredClient {
  return {
    clientId: r.client_id,
    name: r.name,
    metadata: r.metadata,
    secretSha256: r.secret_sha256,
    previousSecretSha256: r.previous_secret_sha256,
    previousSecretExpiresAt: r.previous_secret_expires_at === null ? null : new Date(r.previous_secret_expires_at),
    createdAt: new Date(r.created_at),
  };
}
