/** Queries over SSO sessions (Session rows of `oidc_payloads`), their devices and termination requests. */
import { type Kysely, sql } from 'kysely';
import { type DB, runPrepared } from '../db/index.ts';

/** An SSO session as the account page and the workers see it. */
export interface SessionRow {
  id: string;
  uid: string;
  accountId: string;
  loginTs: number | null;
  acr: string | null;
  authorizations: Record<string, { sid?: string; grantId?: string }>;
  userAgent: string | null;
  ip: string | null;
  lastSeenAt: Date | null;
  expiresAt: Date | null;
}

function toRow(r: {
  id: string;
  payload: Record<string, unknown>;
  expires_at: Date | null;
  user_agent: string | null;
  ip: string | null;
  last_seen_at: Date | null;
}): SessionRow {
  const p = r.payload;
  return {
    id: r.id,
    uid: String(p.uid ?? ''),
    accountId: String(p.accountId ?? ''),
    loginTs: typeof p.loginTs === 'number' ? p.loginTs : null,
    acr: typeof p.acr === 'string' ? p.acr : null,
    authorizations: (p.authorizations as SessionRow['authorizations']) ?? {},
    userAgent: r.user_agent,
    ip: r.ip,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
  };
}

const sessions = (db: Kysely<DB>) =>
  db
    .selectFrom('oidc_payloads as s')
    .leftJoin('session_devices as d', 'd.session_uid', 's.uid')
    .select(['s.id', 's.payload', 's.expires_at', 'd.user_agent', 'd.ip', 'd.last_seen_at'])
    .where('s.model', '=', 'Session');

/** Live sessions of an account, newest first. */
export async function selectAccountSessions(db: Kysely<DB>, accountId: string): Promise<SessionRow[]> {
  const rows = await sessions(db)
    .where(sql<string>`s.payload->>'accountId'`, '=', accountId)
    .where(sql<boolean>`(s.expires_at is null or s.expires_at > now())`)
    .orderBy('s.id')
    .execute();
  return rows.map((r) => toRow(r as never)).sort((a, b) => (b.loginTs ?? 0) - (a.loginTs ?? 0));
}

/** Expired sessions still stored (their portals are told before the rows go). */
export async function selectExpiredSessions(db: Kysely<DB>, limit: number): Promise<SessionRow[]> {
  const rows = await sessions(db).where('s.expires_at', '<', sql<Date>`now()`).limit(limit).execute();
  return rows.map((r) => toRow(r as never));
}

/** A prepared statement: it runs at every authorization (each sign-in and each single sign-on to a portal). */
const UPSERT_DEVICE = `insert into session_devices (session_uid, account_id, user_agent, ip) values ($1, $2, $3, $4)
on conflict (session_uid) do update set last_seen_at = $5, ip = $4`;

/** Records (or refreshes) the device and place of a session. */
export async function upsertSessionDevice(
  db: Kysely<DB>,
  d: { uid: string; accountId: string; userAgent: string | null; ip: string | null },
): Promise<void> {
  await runPrepared(db, 'session_device_upsert', UPSERT_DEVICE, [d.uid, d.accountId, d.userAgent, d.ip, new Date()]);
}

/** Deletes a session and its device row. */
export async function deleteSession(db: Kysely<DB>, id: string, uid: string): Promise<void> {
  await db.deleteFrom('oidc_payloads').where('model', '=', 'Session').where('id', '=', id).execute();
  await db.deleteFrom('session_devices').where('session_uid', '=', uid).execute();
}

/** Asks the service to end every session of these accounts (with back-channel logout). */
export async function insertTerminations(db: Kysely<DB>, accountIds: string[], reason: string): Promise<void> {
  if (accountIds.length) {
    await db
      .insertInto('session_terminations')
      .values(accountIds.map((account_id) => ({ account_id, reason, done_at: null })))
      .execute();
  }
}

/** Locks pending termination requests for this transaction (other nodes skip them). */
export async function claimTerminations(
  db: Kysely<DB>,
  limit: number,
): Promise<{ id: string; accountId: string; reason: string }[]> {
  const r = await sql<{ id: string; account_id: string; reason: string }>`
    select id, account_id, reason from session_terminations where done_at is null
    order by id limit ${limit} for update skip locked`.execute(db);
  return r.rows.map((x) => ({ id: x.id, accountId: x.account_id, reason: x.reason }));
}

/** Marks a termination request carried out. */
export async function markTerminationDone(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable('session_terminations').set({ done_at: new Date() }).where('id', '=', id).execute();
}
