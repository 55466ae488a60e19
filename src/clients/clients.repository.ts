/** Queries over `clients`. */
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';

/** A stored relying portal, as the service sees it. */
export interface StoredClient {
  clientId: string;
  name: string;
  metadata: Record<string, unknown>;
  secretSha256: string | null;
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

export async function selectClients(db: Kysely<DB>): Promise<StoredClient[]> {
  return (await db.selectFrom('clients').selectAll().orderBy('created_at').execute()).map(toClient);
}

function toClient(r: {
  client_id: string;
  name: string;
  metadata: Record<string, unknown>;
  secret_sha256: string | null;
  created_at: Date | string;
}): StoredClient {
  return {
    clientId: r.client_id,
    name: r.name,
    metadata: r.metadata,
    secretSha256: r.secret_sha256,
    createdAt: new Date(r.created_at),
  };
}
