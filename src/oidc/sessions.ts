/**
 * Ending SSO sessions: every portal that took part in a session and registered a back-channel logout URI is told
 * (through the delivery queue), then the session is deleted. Used by the citizen's account page, by officer and
 * registry actions (requested through `session_terminations`, carried out by the service, which holds the signing
 * keys), and when sessions expire.
 */
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { DB } from '../db/index.ts';
import { deleteAccountPayloads, deleteAccountTokensOutside } from './adapter.repository.ts';
import {
  claimTerminations,
  deleteSession,
  insertTerminations,
  markTerminationDone,
  type SessionRow,
  selectAccountSessions,
  selectExpiredSessions,
} from './sessions.repository.ts';

export {
  type SessionRow,
  selectAccountSessions as listAccountSessions,
  upsertSessionDevice,
} from './sessions.repository.ts';

/** Tells the session's portals (back-channel) and deletes the session. */
export async function endSession(provider: Provider, db: Kysely<DB>, session: SessionRow): Promise<void> {
  for (const [clientId, auth] of Object.entries(session.authorizations)) {
    const client = (await provider.Client.find(clientId)) as
      | { backchannelLogoutUri?: string; backchannelLogout(sub: string, sid: string): Promise<void> }
      | undefined;
    if (client?.backchannelLogoutUri) await client.backchannelLogout(session.accountId, auth.sid ?? '');
  }
  await deleteSession(db, session.id, session.uid);
}

/** Requests that every session of these accounts ends (carried out by `processTerminations` on a node). */
export function requestSessionTermination(db: Kysely<DB>, accountIds: string[], reason: string): Promise<void> {
  return insertTerminations(db, accountIds, reason);
}

/** Carries out pending terminations: back-channel logout, then every session, grant and token goes. */
export async function processTerminations(provider: Provider, db: Kysely<DB>): Promise<number> {
  // Rows stay locked (other nodes skip them) and are marked done only after their work: a crash retries them.
  return db.transaction().execute(async (trx) => {
    const pending = await claimTerminations(trx, 50);
    for (const t of pending) {
      for (const s of await selectAccountSessions(db, t.accountId)) await endSession(provider, db, s);
      await deleteAccountPayloads(db, [t.accountId]);
      await markTerminationDone(trx, t.id);
    }
    return pending.length;
  });
}

/** Expired sessions: their portals are told, then the rows go. */
export async function endExpiredSessions(provider: Provider, db: Kysely<DB>): Promise<number> {
  let total = 0;
  for (;;) {
    const expired = await selectExpiredSessions(db, 100);
    for (const s of expired) await endSession(provider, db, s);
    total += expired.length;
    if (expired.length < 100) return total;
  }
}

/**
 * After a password change or reset: every session of the account but `keepUid` ends (portals told by back-channel)
 * and every code and token not of that session is revoked, refresh tokens included. `keepUid` undefined ends all.
 */
export async function endOtherSessions(
  provider: Provider,
  db: Kysely<DB>,
  accountId: string,
  keepUid: string | undefined,
): Promise<{ sessions: number; tokens: number }> {
  let sessions = 0;
  for (const s of await selectAccountSessions(db, accountId)) {
    if (s.uid === keepUid) continue;
    await endSession(provider, db, s);
    sessions++;
  }
  return { sessions, tokens: await deleteAccountTokensOutside(db, accountId, keepUid) };
}
