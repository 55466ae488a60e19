/**
 * The resident's registered mobile phone number, as the national population database keeps it (E.164, e.g.
 * `+84912345678`; null when none is registered). Enrollment sends a one-time code to it. Frozen once landed.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('residents').addColumn('phone', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('residents').dropColumn('phone').execute();
}
