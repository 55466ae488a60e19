/** Queries over `accounts` (joined with `residents` where login needs the number). */
import type { Kysely } from 'kysely';
import { type DB, runPrepared } from '../db/index.ts';
import { type ResidentRow, toResident } from '../registry/index.ts';

/** What login needs to know about an account found by personal identification number. */
export interface LoginRecord {
  accountId: string;
  passwordHash: string;
  level: number;
  accountStatus: string;
  residentStatus: string;
  /** A password reset the citizen has not been told about yet (told at this sign-in), else null. */
  untoldReset: UntoldReset | null;
}

/** A password reset not yet told: when, how (`sms` or `officer`) and from which IP. */
export interface UntoldReset {
  at: Date;
  via: string | null;
  ip: string | null;
}

/**
 * A prepared statement, as it runs on every login; it also reads the untold password reset, which a successful login
 * shows next (one statement where there were two).
 */
const LOGIN_RECORD = `select accounts.id, accounts.password_hash, accounts.level, accounts.status as account_status,
  residents.status as resident_status,
  case when accounts.password_reset_told_at is null then accounts.password_reset_at end as reset_at,
  accounts.password_reset_via as reset_via, accounts.password_reset_ip as reset_ip
from accounts join residents on residents.id = accounts.resident_id where residents.pin = $1`;

export async function selectLoginRecord(db: Kysely<DB>, pin: string): Promise<LoginRecord | undefined> {
  const r = (
    await runPrepared<{
      id: string;
      password_hash: string;
      level: number;
      account_status: string;
      resident_status: string;
      reset_at: Date | null;
      reset_via: string | null;
      reset_ip: string | null;
    }>(db, 'login_record', LOGIN_RECORD, [pin])
  ).rows[0];
  return (
    r && {
      accountId: r.id,
      passwordHash: r.password_hash,
      level: r.level,
      accountStatus: r.account_status,
      residentStatus: r.resident_status,
      untoldReset: r.reset_at ? { at: r.reset_at, via: r.reset_via, ip: r.reset_ip } : null,
    }
  );
}

export async function insertAccount(
  db: Kysely<DB>,
  a: { residentId: string; passwordHash: string; level: number; email?: string | null },
): Promise<string> {
  const r = await db
    .insertInto('accounts')
    .values({ resident_id: a.residentId, password_hash: a.passwordHash, level: a.level, email: a.email ?? null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return r.id;
}

export async function countAccounts(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('accounts')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function updatePasswordHash(db: Kysely<DB>, accountId: string, hash: string): Promise<void> {
  await db
    .updateTable('accounts')
    .set({ password_hash: hash, updated_at: new Date() })
    .where('id', '=', accountId)
    .execute();
}

export async function selectPasswordHash(db: Kysely<DB>, accountId: string): Promise<string | undefined> {
  const r = await db.selectFrom('accounts').select('password_hash').where('id', '=', accountId).executeTakeFirst();
  return r?.password_hash;
}

/** Level-2 state of an account. */
export interface SecondFactorRecord {
  accountId: string;
  level: number;
  status: string;
  verifiedInPersonAt: Date | null;
  verifiedBy: string | null;
  inPersonSession: string | null;
  inPersonSpentAt: Date | null;
  totpSealed: string | null;
  totpPendingSealed: string | null;
  totpLastStep: number | null;
  recoveryCodesLeft: number;
}

export async function selectSecondFactor(db: Kysely<DB>, accountId: string): Promise<SecondFactorRecord | undefined> {
  const r = await db
    .selectFrom('accounts')
    .select((eb) => [
      'id',
      'level',
      'status',
      'verified_in_person_at',
      'verified_by',
      'in_person_session',
      'in_person_spent_at',
      'totp_secret_sealed',
      'totp_pending_sealed',
      'totp_last_step',
      eb
        .selectFrom('recovery_codes')
        .select((e) => e.fn.countAll<string>().as('n'))
        .whereRef('recovery_codes.account_id', '=', 'accounts.id')
        .where('recovery_codes.used_at', 'is', null)
        .as('recovery_left'),
    ])
    .where('id', '=', accountId)
    .executeTakeFirst();
  return (
    r && {
      accountId: r.id,
      level: r.level,
      status: r.status,
      verifiedInPersonAt: r.verified_in_person_at,
      verifiedBy: r.verified_by,
      inPersonSession: r.in_person_session,
      inPersonSpentAt: r.in_person_spent_at,
      totpSealed: r.totp_secret_sealed,
      totpPendingSealed: r.totp_pending_sealed,
      totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
      recoveryCodesLeft: Number(r.recovery_left ?? 0),
    }
  );
}

export async function selectAccountIdByPin(db: Kysely<DB>, pin: string): Promise<string | undefined> {
  const r = await db
    .selectFrom('accounts')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select('accounts.id')
    .where('residents.pin', '=', pin)
    .executeTakeFirst();
  return r?.id;
}

export async function insertActivationCode(
  db: Kysely<DB>,
  a: { accountId: string; codeSha256: string; officer: string; expiresAt: Date },
): Promise<void> {
  await db
    .insertInto('activation_codes')
    .values({
      account_id: a.accountId,
      code_sha256: a.codeSha256,
      officer: a.officer,
      expires_at: a.expiresAt,
      used_at: null,
    })
    .execute();
}

/** Marks a live, unused code of this account used; returns the officer who issued it, or undefined. Atomic. */
export async function useActivationCode(
  db: Kysely<DB>,
  accountId: string,
  codeSha256: string,
): Promise<string | undefined> {
  const r = await db
    .updateTable('activation_codes')
    .set({ used_at: new Date() })
    .where('account_id', '=', accountId)
    .where('code_sha256', '=', codeSha256)
    .where('used_at', 'is', null)
    .where('expires_at', '>', new Date())
    .returning('officer')
    .executeTakeFirst();
  return r?.officer;
}

/** Records a redeemed in-person check: a fresh, unspent ticket bound to the session that redeemed it. */
export async function markVerifiedInPerson(
  db: Kysely<DB>,
  accountId: string,
  officer: string,
  sessionUid: string,
): Promise<void> {
  await db
    .updateTable('accounts')
    .set({
      verified_in_person_at: new Date(),
      verified_by: officer,
      in_person_session: sessionUid,
      in_person_spent_at: null,
      updated_at: new Date(),
    })
    .where('id', '=', accountId)
    .execute();
}

export async function setPendingTotp(db: Kysely<DB>, accountId: string, sealed: string | null): Promise<void> {
  await db.updateTable('accounts').set({ totp_pending_sealed: sealed }).where('id', '=', accountId).execute();
}

/**
 * Promotes the pending TOTP secret, stores recovery codes and sets level 2, in one transaction, and spends the
 * in-person ticket. `authority`: `ticket` (an unspent check of this session, newer than `validSince`) or
 * `second_factor` (replacing the factor of an account already at level 2, from a level-2 session). Checked in the
 * same statement, so a ticket is spent once even when two requests race.
 */
export async function activateTotp(
  db: Kysely<DB>,
  accountId: string,
  step: number,
  recoverySha256: string[],
  authority: { kind: 'ticket'; sessionUid: string; validSince: Date } | { kind: 'second_factor' },
): Promise<boolean> {
  // In the caller's transaction when there is one (the sandbox's test citizens are set up in one).
  const inTransaction = <T>(run: (trx: Kysely<DB>) => Promise<T>) =>
    db.isTransaction ? run(db) : db.transaction().execute(run);
  return inTransaction(async (trx) => {
    let q = trx
      .updateTable('accounts')
      .set((eb) => ({
        totp_secret_sealed: eb.ref('totp_pending_sealed'),
        totp_pending_sealed: null,
        totp_last_step: step,
        level: 2,
        in_person_spent_at: new Date(),
        updated_at: new Date(),
      }))
      .where('id', '=', accountId)
      .where('totp_pending_sealed', 'is not', null);
    q =
      authority.kind === 'ticket'
        ? q
            .where('in_person_session', '=', authority.sessionUid)
            .where('in_person_spent_at', 'is', null)
            .where('verified_in_person_at', '>', authority.validSince)
        : q.where('level', '=', 2).where('totp_secret_sealed', 'is not', null);
    const r = await q.executeTakeFirst();
    if (r.numUpdatedRows !== 1n) return false;
    await trx.deleteFrom('recovery_codes').where('account_id', '=', accountId).execute();
    await trx
      .insertInto('recovery_codes')
      .values(recoverySha256.map((code_sha256) => ({ account_id: accountId, code_sha256, used_at: null })))
      .execute();
    return true;
  });
}

/** Records an accepted TOTP step unless a later or equal one was already accepted (replay). */
export async function advanceTotpStep(db: Kysely<DB>, accountId: string, step: number): Promise<boolean> {
  const r = await db
    .updateTable('accounts')
    .set({ totp_last_step: step })
    .where('id', '=', accountId)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', String(step))]))
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}

/** Uses one unused recovery code; true once per code. */
export async function useRecoveryCode(db: Kysely<DB>, accountId: string, codeSha256: string): Promise<boolean> {
  const r = await db
    .updateTable('recovery_codes')
    .set({ used_at: new Date() })
    .where('account_id', '=', accountId)
    .where('code_sha256', '=', codeSha256)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}

/** Removes the second factor: back to level 1 until a new in-person check (the last one is spent). */
export async function clearSecondFactor(db: Kysely<DB>, accountId: string): Promise<void> {
  const run = async (trx: Kysely<DB>) => {
    await trx
      .updateTable('accounts')
      .set({
        totp_secret_sealed: null,
        totp_pending_sealed: null,
        totp_last_step: null,
        level: 1,
        // The in-person check that led here is used up: level 2 again needs a new one.
        in_person_spent_at: new Date(),
        updated_at: new Date(),
      })
      .where('id', '=', accountId)
      .execute();
    await trx.deleteFrom('recovery_codes').where('account_id', '=', accountId).execute();
  };
  // In its own transaction, or the caller's (an audited officer act).
  await (db.isTransaction ? run(db) : db.transaction().execute(run));
}

export async function setAccountStatus(
  db: Kysely<DB>,
  accountId: string,
  status: 'active' | 'suspended' | 'disabled',
): Promise<void> {
  await db.updateTable('accounts').set({ status, updated_at: new Date() }).where('id', '=', accountId).execute();
}

/** An account and its resident in one round trip (claims, userinfo, the account page): a prepared statement, as it
 * runs on every token, userinfo and introspection request. */
const ACCOUNT_WITH_RESIDENT = `select residents.*, accounts.id as account_id, accounts.level as account_level,
  accounts.status as account_status, accounts.email as account_email, accounts.phone_number as account_phone
from accounts join residents on residents.id = accounts.resident_id where accounts.id = $1`;

/** A row of ACCOUNT_WITH_RESIDENT (or the value of `accountWithResidentJson`, with the same keys). */
export type AccountWithResidentRow = ResidentRow & {
  /** residents.test_citizen (both statements read every resident column). */
  test_citizen: boolean;
  account_id: string;
  account_level: number;
  account_status: 'active' | 'suspended' | 'disabled';
  account_email: string | null;
  account_phone: string | null;
};

/**
 * The same account-and-resident row as one jsonb value, for a statement that reads it with something else (the token
 * lookup reads a token's account with it). `accountIdSql`: an SQL expression of type uuid.
 */
export const accountWithResidentJson = (accountIdSql: string) => `(select to_jsonb(residents.*) || jsonb_build_object(
  'account_id', accounts.id, 'account_level', accounts.level, 'account_status', accounts.status,
  'account_email', accounts.email, 'account_phone', accounts.phone_number)
from accounts join residents on residents.id = accounts.resident_id where accounts.id = ${accountIdSql})`;

/** An account and its resident from a row of either statement. */
export function accountWithResidentOf(r: AccountWithResidentRow) {
  return {
    account: {
      id: r.account_id,
      level: r.account_level,
      status: r.account_status,
      email: r.account_email,
      phoneNumber: r.account_phone,
      testCitizen: r.test_citizen,
    },
    resident: toResident(r),
  };
}

export async function selectAccountWithResident(db: Kysely<DB>, accountId: string) {
  const r = (await runPrepared<AccountWithResidentRow>(db, 'account_with_resident', ACCOUNT_WITH_RESIDENT, [accountId]))
    .rows[0];
  return r && accountWithResidentOf(r);
}

/** Sets a new password after a reset and remembers how and from where (the citizen is told at the next sign-in). */
export async function markPasswordReset(
  db: Kysely<DB>,
  accountId: string,
  r: { hash: string; via: 'sms' | 'officer'; ip: string | null },
): Promise<void> {
  const now = new Date();
  await db
    .updateTable('accounts')
    .set({
      password_hash: r.hash,
      password_reset_at: now,
      password_reset_via: r.via,
      password_reset_ip: r.ip,
      password_reset_told_at: null,
      updated_at: now,
    })
    .where('id', '=', accountId)
    .execute();
}

/** A password reset the citizen has not been told about yet. */
export async function selectUntoldReset(db: Kysely<DB>, accountId: string) {
  return db
    .selectFrom('accounts')
    .select(['password_reset_at as at', 'password_reset_via as via', 'password_reset_ip as ip'])
    .where('id', '=', accountId)
    .where('password_reset_at', 'is not', null)
    .where('password_reset_told_at', 'is', null)
    .executeTakeFirst();
}

/** The citizen has seen the notice of their last reset. */
export async function markResetTold(db: Kysely<DB>, accountId: string): Promise<void> {
  await db.updateTable('accounts').set({ password_reset_told_at: new Date() }).where('id', '=', accountId).execute();
}

/** The phone number registered to the account's resident in the national population database. */
export async function selectRegisteredPhone(db: Kysely<DB>, accountId: string): Promise<string | null> {
  const r = await db
    .selectFrom('residents')
    .innerJoin('accounts', 'accounts.resident_id', 'residents.id')
    .select('residents.phone')
    .where('accounts.id', '=', accountId)
    .executeTakeFirst();
  return r?.phone ?? null;
}
