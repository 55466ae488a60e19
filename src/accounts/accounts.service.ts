/**
 * E-ID accounts: password login against the registry-bound account.
 *
 * Threat note: every failure (malformed number, unknown number, no account, wrong password, disabled account or
 * resident no longer active) returns the same rejection after the same argon2 work; the precise reason is returned
 * separately for the audit log only.
 */
import type { Kysely } from 'kysely';
import {
  checkNewPassword,
  MAX_PASSWORD_LENGTH,
  type PasswordHasher,
  type PasswordProblem,
} from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { findResident, isPinShape, type Resident } from '../registry/index.ts';
import {
  type AccountWithResidentRow,
  accountWithResidentOf,
  countAccounts,
  insertAccount,
  selectAccountWithResident,
  selectLoginRecord,
  selectPasswordHash,
  updatePasswordHash,
} from './accounts.repository.ts';
import { noticeOf, type PendingResetNotice } from './reset-notice.ts';

/** Why a login failed (for the audit log, never for the citizen). */
export type LoginFailure =
  | 'malformed_pin'
  | 'unknown_account'
  | 'wrong_password'
  | 'account_disabled'
  | 'resident_inactive';

/** Outcome of a password check; a success carries the notice of an untold password reset, if any. */
export type LoginResult =
  | { ok: true; accountId: string; level: number; resetNotice: PendingResetNotice | null }
  | { ok: false; reason: LoginFailure };

/** Checks a personal identification number and password. Always runs argon2 once. */
export async function verifyPassword(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  pin: string,
  password: string,
): Promise<LoginResult> {
  const wellFormed = isPinShape(pin) && password.length > 0 && password.length <= MAX_PASSWORD_LENGTH;
  const record = wellFormed ? await selectLoginRecord(db, pin) : undefined;
  const ok = await hasher.verifyOrDummy(record?.passwordHash ?? null, wellFormed ? password : '');
  if (!wellFormed) return { ok: false, reason: 'malformed_pin' };
  if (!record) return { ok: false, reason: 'unknown_account' };
  if (!ok) return { ok: false, reason: 'wrong_password' };
  if (record.accountStatus !== 'active') return { ok: false, reason: 'account_disabled' };
  if (record.residentStatus !== 'active') return { ok: false, reason: 'resident_inactive' };
  if (hasher.needsRehash(record.passwordHash)) {
    await updatePasswordHash(db, record.accountId, await hasher.hash(password)); // upgrade to current parameters
  }
  return { ok: true, accountId: record.accountId, level: record.level, resetNotice: noticeOf(record.untoldReset) };
}

/** Changes a password; needs the current one. Returns a precise problem or null on success. */
export async function changePassword(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  accountId: string,
  current: string,
  next: string,
): Promise<'wrong_password' | PasswordProblem | null> {
  const hash = (await selectPasswordHash(db, accountId)) ?? null;
  if (!(await hasher.verifyOrDummy(hash, current.slice(0, MAX_PASSWORD_LENGTH)))) return 'wrong_password';
  const profile = await findAccountProfile(db, accountId);
  const problem = checkNewPassword(next, { pin: profile?.resident.pin, birthDate: profile?.resident.birthDate });
  if (problem) return problem;
  await updatePasswordHash(db, accountId, await hasher.hash(next));
  return null;
}

/** An account with the resident it belongs to, for claims. */
export interface AccountProfile {
  accountId: string;
  level: number;
  status: string;
  email: string | null;
  phoneNumber: string | null;
  /** A synthetic test citizen of the sandbox (residents.test_citizen). */
  testCitizen: boolean;
  resident: Resident;
}

/**
 * Loads an account and its resident; undefined when either is gone. `row`: the two as already read with something
 * else (the token lookup), then no statement is made.
 */
export async function findAccountProfile(
  db: Kysely<DB>,
  accountId: string,
  row?: AccountWithResidentRow,
): Promise<AccountProfile | undefined> {
  if (!/^[0-9a-f-]{36}$/.test(accountId)) return undefined;
  const found = row ? accountWithResidentOf(row) : await selectAccountWithResident(db, accountId);
  if (!found) return undefined;
  const { account, resident } = found;
  return {
    accountId: account.id,
    level: account.level,
    status: account.status,
    email: account.email,
    phoneNumber: account.phoneNumber,
    testCitizen: account.testCitizen,
    resident,
  };
}

/** Creates an account for an existing resident (used by the demo seed; enrollment comes with the registry issue). */
export async function createAccount(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  input: { pin: string; password: string; level?: number; email?: string },
): Promise<string> {
  if (input.password.length < 8 || input.password.length > MAX_PASSWORD_LENGTH)
    throw new AppError('invalid_input', `password must be 8 to ${MAX_PASSWORD_LENGTH} characters`);
  const resident = await findResident(db, { pin: input.pin });
  if (!resident) throw new AppError('not_found', 'no resident has this personal identification number');
  return insertAccount(db, {
    residentId: resident.id,
    passwordHash: await hasher.hash(input.password),
    level: input.level ?? 1,
    email: input.email ?? null,
  });
}

export { countAccounts };
