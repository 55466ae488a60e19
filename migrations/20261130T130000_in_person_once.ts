/**
 * An in-person verification is an enrollment ticket, not a permanent attribute: it is bound to the session that
 * redeemed the officer's activation code, valid for a bounded window, and spent when a second factor is enrolled
 * with it (or when an officer resets the second factor). Verifications recorded before this migration count as
 * spent: the citizens who hold level 2 keep it; the others see an officer again. Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('accounts')
    .addColumn('in_person_session', 'text')
    .addColumn('in_person_spent_at', 'timestamptz')
    .execute();
  await sql`update accounts set in_person_spent_at = now() where verified_in_person_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('accounts').dropColumn('in_person_session').dropColumn('in_person_spent_at').execute();
}
