/**
 * One secret check at a time per key (a personal-ID pseudonym, an account): a lease row held while a password or
 * code is checked, so failures are counted after each check instead of reserved before it. A lease expires by
 * itself when its holder died. Frozen once landed.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('attempt_leases')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('until', 'timestamptz', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('attempt_leases').execute();
}
