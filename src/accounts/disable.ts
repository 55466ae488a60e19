/**
 * Accounts of residents who left the active population (died, number revoked, citizenship lost).
 *
 * What this enforces: such an account can no longer be used anywhere. It is disabled (login refuses it) and its
 * grants, codes and tokens are deleted in the same transaction, so nothing issued before keeps working (a refresh
 * token would otherwise outlive the person). Its SSO sessions are handed to the service as termination requests
 * (`session_terminations`), which tells the portals by back-channel logout before deleting them.
 */
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/index.ts';

/**
 * oidc-provider models that carry an accountId and would keep the account usable, besides grants (sessions end by
 * request). Each is issued under a grant of its account.
 */
const TOKEN_MODELS = ['AccessToken', 'RefreshToken', 'AuthorizationCode'];

/**
 * Disables the accounts of these residents, deletes their grants, codes and tokens and requests the end of their
 * sessions (with back-channel logout). Returns the ids of
 * the accounts this call disabled (accounts already disabled are not returned, but their protocol state is deleted
 * too). Idempotent.
 */
export async function disableAccountsOfResidents(db: Kysely<DB>, residentIds: string[]): Promise<string[]> {
  if (!residentIds.length) return [];
  return db.transaction().execute(async (trx) => {
    const accounts = await trx
      .selectFrom('accounts')
      .select(['id', 'status'])
      .where('resident_id', 'in', residentIds)
      .forUpdate()
      .execute();
    if (!accounts.length) return [];
    const disabled = accounts.filter((a) => a.status !== 'disabled').map((a) => a.id);
    if (disabled.length)
      await trx
        .updateTable('accounts')
        .set({ status: 'disabled', updated_at: sql`now()` })
        .where('id', 'in', disabled)
        .execute();
    // Codes and tokens through the accounts' grants, then the grants: by index (grants by account, rows by grant),
    // never a read of every token row.
    const ids = accounts.map((a) => a.id);
    const accountOf = sql<string>`payload->>'accountId'`;
    await trx
      .deleteFrom('oidc_payloads')
      .where('model', 'in', TOKEN_MODELS)
      .where('grant_id', 'in', (eb) =>
        eb
          .selectFrom('oidc_payloads as g')
          .select('g.id')
          .where('g.model', '=', 'Grant')
          .where(sql<string>`g.payload->>'accountId'`, 'in', ids),
      )
      .where(accountOf, 'in', ids)
      .execute();
    await trx.deleteFrom('oidc_payloads').where('model', '=', 'Grant').where(accountOf, 'in', ids).execute();
    if (disabled.length) {
      await trx
        .insertInto('session_terminations')
        .values(disabled.map((account_id) => ({ account_id, reason: 'resident_inactive', done_at: null })))
        .execute();
    }
    return disabled;
  });
}

/**
 * Disables the still-active accounts of every resident whose status is not `active`: the sweep that catches a
 * deactivation whose follow-up was interrupted (a crash between an import batch's commit and its callback). Returns
 * the ids of the accounts it disabled.
 */
export async function disableAccountsOfInactiveResidents(db: Kysely<DB>): Promise<string[]> {
  const rows = await db
    .selectFrom('accounts')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select('accounts.resident_id')
    .where('residents.status', '<>', 'active')
    .where('accounts.status', '<>', 'disabled')
    .execute();
  return disableAccountsOfResidents(
    db,
    rows.map((r) => r.resident_id),
  );
}
