/**
 * One row per running node, rewritten by its readiness probe: a tiny committed write that fails when PostgreSQL
 * cannot write (a full disk, a read-only standby after a failover). Rows of nodes gone for an hour are deleted by
 * the probe itself. Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('readiness_probe')
    .addColumn('node', 'text', (c) => c.primaryKey())
    .addColumn('checked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('readiness_probe').execute();
}
