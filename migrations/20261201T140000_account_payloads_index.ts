/**
 * The grants and sessions of an account, found by index. A citizen's grant for a portal is looked up at every sign-in
 * from a new browser (the remembered consent), the account's sessions and grants on the citizen's pages, at "log out
 * everywhere", a suspension and a password change. Without this index each of those read every grant or session row
 * (a scan of the grants at each such sign-in: 44 ms at 300,000 grants, growing with the country). Partial: only the
 * two models looked up this way, so the token rows written on every token request pay nothing for it.
 * Built in the migration's transaction like the earlier ones (writes to oidc_payloads wait for the build: seconds for
 * millions of rows). Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The portal second: the grant of an account for one portal is found by both (the portal alone would read every
  // grant of that portal).
  await sql`create index if not exists oidc_payloads_account on oidc_payloads ((payload->>'accountId'),
    (payload->>'clientId')) where model in ('Grant', 'Session')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists oidc_payloads_account`.execute(db);
}
