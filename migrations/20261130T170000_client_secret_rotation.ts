/**
 * Client secret rotation: a portal's previous secret (its SHA-256, like the current one) keeps working until
 * `previous_secret_expires_at`, so that the portal can deploy the new secret without an outage. Both null outside a
 * rotation's grace period. Frozen once landed.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('clients')
    .addColumn('previous_secret_sha256', 'text')
    .addColumn('previous_secret_expires_at', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('clients')
    .dropColumn('previous_secret_sha256')
    .dropColumn('previous_secret_expires_at')
    .execute();
}
