/**
 * Queries over `oidc_payloads`, the one table behind every oidc-provider model.
 *
 * The queries every token request runs (find, upsert, consume, destroy, claim) are fixed SQL texts run as named
 * prepared statements (`runPrepared`): a token request makes several of them, and through Kysely each cost over
 * twice the CPU. The rest are built with Kysely as usual.
 */
import { type Kysely, sql } from 'kysely';
import { type AccountWithResidentRow, accountWithResidentJson } from '../accounts/index.ts';
import { type DB, runPrepared } from '../db/index.ts';

type Payload = Record<string, unknown>;

const UPSERT = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, expires_at)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
  user_code = excluded.user_code, expires_at = excluded.expires_at, consumed_at = null`;
const FIND = Object.fromEntries(
  (['id', 'uid', 'user_code'] as const).map((column) => [
    column,
    `select payload, consumed_at from oidc_payloads where model = $1 and ${column} = $2
      and (expires_at is null or expires_at > now())`,
  ]),
) as Record<'id' | 'uid' | 'user_code', string>;
/** An account id (accounts.id is a uuid); the statement reads the account of a token only for one of this shape. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Token models read with their account (the ones oidc-provider follows with findAccount). */
const ACCOUNT_TOKEN_MODELS = new Set(['AccessToken', 'RefreshToken', 'AuthorizationCode']);

// Several instances by (model, id) in one statement, each with the grant it belongs to (read in the same snapshot:
// oidc-provider asks for a token's grant right after the token, and a grant is revoked with its tokens in one
// transaction, so both are seen or neither).
// Likewise the token's account with its resident, which oidc-provider asks for next (findAccount): an account is
// suspended with its tokens deleted in one transaction too.
const FIND_MANY = `select t.model, t.id, t.payload, t.consumed_at, t.grant_id, g.payload as grant_payload,
  g.consumed_at as grant_consumed_at,
  case when t.model in (${[...ACCOUNT_TOKEN_MODELS].map((m) => `'${m}'`).join(', ')})
    and t.payload->>'accountId' ~ '${UUID.source}'
  then ${accountWithResidentJson("(t.payload->>'accountId')::uuid")} end as account,
  coalesce((select c.metadata->'dinhdanh_disabled' = 'true'::jsonb from clients c
    where c.client_id = t.payload->>'clientId'), false) as client_disabled
from unnest($1::text[], $2::text[]) as k(model, id)
join oidc_payloads t on t.model = k.model and t.id = k.id
left join oidc_payloads g on g.model = 'Grant' and g.id = t.grant_id and (g.expires_at is null or g.expires_at > now())
where t.expires_at is null or t.expires_at > now()`;
const CONSUME = 'update oidc_payloads set consumed_at = now() where model = $1 and id = $2 and consumed_at is null';
// A live row wins the conflict (nothing written, no row counted); an expired one not yet purged is taken over.
const CLAIM = `insert into oidc_payloads (model, id, payload, expires_at) values ($1, $2, $3, $4)
on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = null,
  grant_id = null, uid = null, user_code = null
where oidc_payloads.expires_at is not null and oidc_payloads.expires_at <= now()`;
const DESTROY = 'delete from oidc_payloads where model = $1 and id = any($2::text[])';

/** Inserts or replaces one model instance. */
export async function upsertPayload(
  db: Kysely<DB>,
  model: string,
  id: string,
  payload: Payload,
  expiresIn: number | undefined,
): Promise<void> {
  await runPrepared(db, 'oidc_upsert', UPSERT, [
    model,
    id,
    JSON.stringify(payload),
    typeof payload.grantId === 'string' ? payload.grantId : null,
    typeof payload.uid === 'string' ? payload.uid : null,
    typeof payload.userCode === 'string' ? payload.userCode : null,
    expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
  ]);
}

/** Finds a live instance by a column; the payload gains `consumed: true` once consumed. */
export async function findPayload(
  db: Kysely<DB>,
  model: string,
  column: 'id' | 'uid' | 'user_code',
  value: string,
): Promise<Payload | undefined> {
  // Ids come from requests: one PostgreSQL cannot even compare (a NUL byte) matches nothing, rather than failing.
  if (value.includes('\u0000') || value.length > 1000) return undefined;
  const { rows } = await runPrepared<{ payload: Payload; consumed_at: Date | null }>(
    db,
    `oidc_find_${column}`,
    FIND[column],
    [model, value],
  );
  const row = rows[0];
  if (!row) return undefined;
  return row.consumed_at ? { ...row.payload, consumed: true } : row.payload;
}

/**
 * A live instance found by `findPayloads`, with its grant when it names one (`grant` undefined: no live grant) and,
 * for a token of an account, that account with its resident (always there and active: a token of any other is not
 * live; undefined: not a token of an account).
 */
export interface FoundPayload {
  payload: Payload;
  grantId: string | null;
  grant: Payload | undefined;
  account: AccountWithResidentRow | undefined;
}

/** Finds live instances by (model, id) in one statement; keyed by `payloadKey(model, id)`. */
export async function findPayloads(
  db: Kysely<DB>,
  keys: { model: string; id: string }[],
): Promise<Map<string, FoundPayload>> {
  const usable = keys.filter((k) => !k.id.includes('\u0000') && k.id.length <= 1000);
  const found = new Map<string, FoundPayload>();
  if (!usable.length) return found;
  const { rows } = await runPrepared<{
    model: string;
    id: string;
    payload: Payload;
    consumed_at: Date | null;
    grant_id: string | null;
    grant_payload: Payload | null;
    grant_consumed_at: Date | null;
    account: AccountWithResidentRow | null;
    client_disabled: boolean;
  }>(db, 'oidc_find_many', FIND_MANY, [usable.map((k) => k.model), usable.map((k) => k.id)]);
  const withConsumed = (p: Payload, at: Date | null) => (at ? { ...p, consumed: true } : p);
  for (const r of rows) {
    // Not live, whatever the row says: a token of a disabled portal, or of an account that is not active (suspended,
    // disabled, its resident no longer active; the rule of findAccount). Read in the same statement, so a suspension
    // or a portal's disabling stops its tokens everywhere at once (introspection too, which never asks for the
    // account or, for an API, the token's own client).
    if (r.client_disabled) continue;
    const holder =
      ACCOUNT_TOKEN_MODELS.has(r.model) && typeof r.payload.accountId === 'string' && UUID.test(r.payload.accountId);
    const account = holder ? r.account : undefined;
    if (account !== undefined && (account?.account_status !== 'active' || account.status !== 'active')) continue;
    found.set(payloadKey(r.model, r.id), {
      payload: withConsumed(r.payload, r.consumed_at),
      grantId: r.grant_id,
      grant: r.grant_payload ? withConsumed(r.grant_payload, r.grant_consumed_at) : undefined,
      account,
    });
  }
  return found;
}

/** The key of an instance in `findPayloads`' answer. */
export const payloadKey = (model: string, id: string) => `${model}\u0000${id}`;

// A token request's writes in one statement and one commit: its consume (an authorization code, a refresh token) and
// the saves that follow it (the new tokens), these only if every consume took effect (nobody consumed it first).
const CONSUME_AND_SAVE = `with c as (
  update oidc_payloads set consumed_at = now()
  where (model, id) in (select * from unnest($1::text[], $2::text[])) and consumed_at is null
  returning 1
), u as (
  insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, expires_at)
  select * from unnest($3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
  where (select count(*) from c) = $10
  on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
    user_code = excluded.user_code, expires_at = excluded.expires_at, consumed_at = null
  returning 1
)
select (select count(*) from c)::int as consumed`;

/** An instance to save, as `upsertPayload` takes it. */
export interface PayloadWrite {
  model: string;
  id: string;
  payload: Payload;
  expiresIn: number | undefined;
}

/**
 * Consumes instances and, only if all `expected` consumes took effect, saves `saves`; atomic (one statement). `consume`
 * may hold an instance under two ids (hashed and, from before hashing, plain): at most one of them exists. Returns
 * whether the consumes took effect (false: someone consumed one first, nothing was written).
 */
export async function consumeAndSave(
  db: Kysely<DB>,
  consume: { model: string; id: string }[],
  expected: number,
  saves: PayloadWrite[],
): Promise<boolean> {
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const { rows } = await runPrepared<{ consumed: number }>(db, 'oidc_consume_and_save', CONSUME_AND_SAVE, [
    consume.map((c) => c.model),
    consume.map((c) => c.id),
    saves.map((s) => s.model),
    saves.map((s) => s.id),
    saves.map((s) => JSON.stringify(s.payload)),
    saves.map((s) => str(s.payload.grantId)),
    saves.map((s) => str(s.payload.uid)),
    saves.map((s) => str(s.payload.userCode)),
    saves.map((s) => (s.expiresIn ? new Date(Date.now() + s.expiresIn * 1000) : null)),
    expected,
  ]);
  return rows[0]?.consumed === expected;
}

/** Marks an instance consumed; true only for the one caller that consumed it (atomic across nodes). */
export async function consumePayload(db: Kysely<DB>, model: string, id: string): Promise<boolean> {
  return (await runPrepared(db, 'oidc_consume', CONSUME, [model, id])).rowCount === 1;
}

/**
 * Records an instance unless a live one with this id exists; true only for the one caller that recorded it (atomic
 * across nodes: a unique key, no read before the write).
 */
export async function claimPayload(
  db: Kysely<DB>,
  model: string,
  id: string,
  payload: Payload,
  expiresIn: number,
): Promise<boolean> {
  if (id.includes('\u0000') || id.length > 1000) return false;
  const expiresAt = new Date(Date.now() + expiresIn * 1000);
  return (await runPrepared(db, 'oidc_claim', CLAIM, [model, id, JSON.stringify(payload), expiresAt])).rowCount === 1;
}

/** Deletes one instance, under any of its row ids (hashed, and plain from before hashing), in one statement. */
export async function destroyPayload(db: Kysely<DB>, model: string, ids: string[]): Promise<void> {
  await runPrepared(db, 'oidc_destroy', DESTROY, [model, ids]);
}

/** Deletes every instance of `model` that belongs to a grant. */
export async function revokePayloadsByGrant(db: Kysely<DB>, model: string, grantId: string): Promise<void> {
  await db.deleteFrom('oidc_payloads').where('model', '=', model).where('grant_id', '=', grantId).execute();
}

/** Deletes at most `limit` expired rows; returns how many. Small batches keep locks short. */
export async function purgeExpiredPayloads(db: Kysely<DB>, limit = 1000): Promise<number> {
  const res = await db
    .deleteFrom('oidc_payloads')
    .where(({ eb, selectFrom }) =>
      eb(
        sql.raw('(model, id)'),
        'in',
        selectFrom('oidc_payloads')
          .select(['model', 'id'])
          .where('expires_at', '<', sql<Date>`now()`)
          // Sessions are ended by endExpiredSessions, which tells their portals first.
          .where('model', '<>', 'Session')
          .limit(limit),
      ),
    )
    .executeTakeFirst();
  return Number(res.numDeletedRows);
}

/** Codes and tokens: each belongs to a grant of the account that holds it (oidc-provider issues none without one). */
const TOKEN_MODELS = ['AccessToken', 'RefreshToken', 'AuthorizationCode'];

/**
 * Deletes the codes and tokens of these accounts, found through the accounts' grants (by index: the grants of an
 * account, then the rows of each grant), not by reading every token row. A token whose grant is gone is not usable
 * anyway (oidc-provider refuses a token without its grant).
 */
function deleteAccountTokens(db: Kysely<DB>, accountIds: string[]) {
  return db
    .deleteFrom('oidc_payloads')
    .where('model', 'in', TOKEN_MODELS)
    .where('grant_id', 'in', (eb) =>
      eb
        .selectFrom('oidc_payloads as g')
        .select('g.id')
        .where('g.model', '=', 'Grant')
        .where(sql<string>`g.payload->>'accountId'`, 'in', accountIds),
    )
    .where(sql<string>`payload->>'accountId'`, 'in', accountIds);
}

/**
 * Deletes every session, grant, code, token and interaction of these accounts (in one transaction; the caller's, if
 * it has one); returns how many rows. Sessions and grants by index, codes and tokens through the grants; interactions
 * (an hour's worth at most) by model.
 */
export async function deleteAccountPayloads(db: Kysely<DB>, accountIds: string[]): Promise<number> {
  if (!accountIds.length) return 0;
  const run = async (trx: Kysely<DB>) => {
    const tokens = await deleteAccountTokens(trx, accountIds).executeTakeFirst();
    const rest = await trx
      .deleteFrom('oidc_payloads')
      .where('model', 'in', ['Grant', 'Session'])
      .where(sql<string>`payload->>'accountId'`, 'in', accountIds)
      .executeTakeFirst();
    const interactions = await trx
      .deleteFrom('oidc_payloads')
      .where('model', '=', 'Interaction')
      .where(sql<string>`payload->>'accountId'`, 'in', accountIds)
      .executeTakeFirst();
    return Number(tokens.numDeletedRows + rest.numDeletedRows + interactions.numDeletedRows);
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

/** Grants an account has given: id, portal and scope. */
export async function selectAccountGrants(
  db: Kysely<DB>,
  accountId: string,
): Promise<{ grantId: string; clientId: string; scope: string }[]> {
  const rows = await db
    .selectFrom('oidc_payloads')
    .select(['id', 'payload'])
    .where('model', '=', 'Grant')
    .where(sql<string>`payload->>'accountId'`, '=', accountId)
    .where(sql<boolean>`(expires_at is null or expires_at > now())`)
    .orderBy(sql`expires_at desc nulls first`)
    .execute();
  return rows.map((r) => ({
    grantId: r.id,
    clientId: String(r.payload.clientId),
    scope: String((r.payload.openid as { scope?: string } | undefined)?.scope ?? ''),
  }));
}

// The model is written in the text (not a parameter): the prepared statement's plan can then use the partial index
// of the account's grants and sessions (migrations/20261201T140000_account_payloads_index.ts).
const LATEST_GRANT = `select id from oidc_payloads where model = 'Grant' and payload->>'accountId' = $1
  and payload->>'clientId' = $2 and (expires_at is null or expires_at > now())
order by expires_at desc nulls first limit 1`;

/** The newest live grant an account gave a client (by index: one statement at a sign-in from a new browser). */
export async function selectLatestGrantId(
  db: Kysely<DB>,
  accountId: string,
  clientId: string,
): Promise<string | undefined> {
  const { rows } = await runPrepared<{ id: string }>(db, 'oidc_latest_grant', LATEST_GRANT, [accountId, clientId]);
  return rows[0]?.id;
}

/** Deletes a grant of this account and every code and token issued under it; false if it is not theirs. */
export async function deleteAccountGrant(db: Kysely<DB>, accountId: string, grantId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const res = await trx
      .deleteFrom('oidc_payloads')
      .where('model', '=', 'Grant')
      .where('id', '=', grantId)
      .where(sql<string>`payload->>'accountId'`, '=', accountId)
      .executeTakeFirst();
    if (res.numDeletedRows !== 1n) return false;
    await trx.deleteFrom('oidc_payloads').where('grant_id', '=', grantId).execute();
    return true;
  });
}

/**
 * Deletes the account's codes and tokens (refresh tokens included; found through its grants) except those of the session `keepSessionUid`
 * (none kept when undefined); returns how many rows.
 */
export async function deleteAccountTokensOutside(
  db: Kysely<DB>,
  accountId: string,
  keepSessionUid: string | undefined,
): Promise<number> {
  let q = deleteAccountTokens(db, [accountId]);
  if (keepSessionUid) q = q.where(sql<boolean>`payload->>'sessionUid' is distinct from ${keepSessionUid}`);
  const res = await q.executeTakeFirst();
  return Number(res.numDeletedRows);
}
