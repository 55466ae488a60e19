/**
 * Signing-key lifecycle (staged -> active -> retired -> removed, or revoked) and the service secret root (random,
 * sealed under the master key) from which cookie keys, the pairwise secret and the personal-ID pseudonym key are
 * derived, so that rewrapping under a new master key changes none of them. Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('signing_keys')
    .addColumn('auto_activate', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('removed_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('operator', 'text')
    .execute();
  await sql`alter table signing_keys add constraint signing_keys_state check (state in ('staged', 'active', 'retired', 'removed', 'revoked'))`.execute(
    db,
  );
  await sql`create unique index signing_keys_one_active on signing_keys (alg) where state = 'active'`.execute(db);

  await db.schema
    .createTable('service_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('service_secrets').execute();
  await sql`drop index signing_keys_one_active`.execute(db);
  await sql`alter table signing_keys drop constraint signing_keys_state`.execute(db);
  await db.schema
    .alterTable('signing_keys')
    .dropColumn('auto_activate')
    .dropColumn('removed_at')
    .dropColumn('revoked_at')
    .dropColumn('operator')
    .execute();
}
