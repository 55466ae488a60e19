/**
 * Staff and the agency onboarding they do. `staff_roles`: which accounts hold which staff role (officers optionally
 * scoped to provinces, agency admins to one agency). `residents.test_citizen`: the synthetic residents that sandbox
 * portals may sign in (and the only ones they may). `sandbox_citizens`: their published credentials (synthetic, shown
 * to every agency admin by design). Indexes for usage per portal (audit trail by portal and time; grants by portal). Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('staff_roles')
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) =>
      c.notNull().check(sql`role in ('officer', 'security', 'agency_admin', 'auditor', 'admin')`),
    )
    // Officers: the province codes (first 3 digits of a personal ID) they may act in; null = everywhere.
    .addColumn('provinces', sql`text[]`)
    // Agency admins: the agency whose portals they manage.
    .addColumn('agency', 'text')
    .addColumn('granted_by', 'text', (c) => c.notNull())
    .addColumn('granted_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('staff_roles_pk', ['account_id', 'role'])
    .addCheckConstraint('staff_roles_agency', sql`(role = 'agency_admin') = (agency is not null)`)
    .execute();

  await db.schema
    .alterTable('residents')
    .addColumn('test_citizen', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema
    .createTable('sandbox_citizens')
    .addColumn('resident_id', 'uuid', (c) => c.primaryKey().references('residents.id').onDelete('cascade'))
    .addColumn('password', 'text', (c) => c.notNull())
    .addColumn('totp_secret', 'text')
    .execute();

  await sql`create index if not exists audit_events_client_at on audit_events (client_id, at)`.execute(db);
  // Active grants per portal (the agency area's usage): without it, a count reads every grant.
  await sql`create index if not exists oidc_payloads_grant_client on oidc_payloads ((payload->>'clientId'))
    where model = 'Grant'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists oidc_payloads_grant_client`.execute(db);
  await sql`drop index if exists audit_events_client_at`.execute(db);
  await db.schema.dropTable('sandbox_citizens').execute();
  await db.schema.alterTable('residents').dropColumn('test_citizen').execute();
  await db.schema.dropTable('staff_roles').execute();
}
