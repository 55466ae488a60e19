/**
 * Account recovery ("Quên mật khẩu?"). Online: the card details find the resident, an SMS code to the phone
 * registered to them proves the person, and a level-2 account also needs its second factor (a TOTP or a recovery
 * code): the phone alone does not reset a level-2 account. In person: an officer's reset code stands for all of it.
 * Completing a reset is the caller's cue to end every session and revoke every token (oidc/sessions.ts) and to tell
 * the citizen (SMS now, and a notice at their next sign-in).
 *
 * Threat note: the first step answers like enrollment (one page; the last two digits of the phone only when the
 * details match a resident with a phone), so it reveals neither whether a number exists nor whether it has an
 * account; a resident without an account gets a notice by SMS instead of a code.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { checkNewPassword, type PasswordHasher, type PasswordProblem } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { findResident } from '../registry/index.ts';
import type { SmsSender } from '../sms/index.ts';
import { markPasswordReset, selectAccountIdByPin, selectSecondFactor } from './accounts.repository.ts';
import { matchResident, type NoMatch, SMS_TEXT } from './enroll.ts';
import type { CodeBook, CodeRow } from './possession.ts';

/** The outcome of the first step; as EnrollmentStart. */
export type RecoveryStart =
  | { outcome: 'invalid_input'; field: 'pin' | 'birthDate' | 'fullName' }
  | {
      outcome: 'code_sent' | 'throttled' | 'no_phone' | 'no_account' | 'account_disabled' | NoMatch;
      handle: string;
      phone: string | null;
      accountId?: string;
    };

/** A verified reset waiting for the new password. */
export interface PendingReset {
  handle: string;
  accountId: string;
  /** The account is level 2 and the proof was an SMS code: the second factor is needed too. */
  needsSecondFactor: boolean;
  via: 'sms' | 'officer';
  pin: string;
  birthDate: string;
  /** The browser (form nonce) that verified the code: only it may finish. */
  browser: string;
}

const SMS_NOTICE =
  'DINHDANH: Co nguoi vua yeu cau dat lai mat khau bang thong tin cua ban, nhung ban chua co tai khoan dinh danh dien tu. Neu khong phai ban, hay bo qua tin nhan nay.';

/** Step 1: the card details; an SMS code to the registered phone when they name an account. */
export async function startRecovery(
  db: Kysely<DB>,
  codes: CodeBook,
  sms: SmsSender,
  input: { pin: string; fullName: string; birthDate: string },
  ip: string | null,
  browser: string,
): Promise<RecoveryStart> {
  const decoy = randomUUID();
  const m = await matchResident(db, input);
  if (m.outcome === 'invalid_input') return m;
  if (m.outcome !== 'match') return { outcome: m.outcome, handle: decoy, phone: null };
  const { resident } = m;
  if (!resident.phone) return { outcome: 'no_phone', handle: decoy, phone: null };
  const accountId = await selectAccountIdByPin(db, resident.pin);
  const state = accountId ? await selectSecondFactor(db, accountId) : undefined;
  if (!accountId || !state) {
    const notice = await codes.issueSmsCode({
      purpose: 'reset_sms',
      residentId: resident.id,
      phone: resident.phone,
      ip,
      browser,
    });
    if (notice) await sms.send({ to: resident.phone, text: SMS_NOTICE, purpose: 'notice' });
    return { outcome: 'no_account', handle: decoy, phone: resident.phone };
  }
  if (state.status !== 'active')
    return { outcome: 'account_disabled', handle: decoy, phone: resident.phone, accountId };
  const issued = await codes.issueSmsCode({
    purpose: 'reset_sms',
    residentId: resident.id,
    accountId,
    phone: resident.phone,
    ip,
    browser,
  });
  if (!issued) return { outcome: 'throttled', handle: decoy, phone: resident.phone, accountId };
  await sms.send({ to: resident.phone, text: SMS_TEXT.reset(issued.code), purpose: 'reset' });
  return { outcome: 'code_sent', handle: issued.id, phone: resident.phone, accountId };
}

async function pendingOf(
  db: Kysely<DB>,
  row: CodeRow | null | undefined,
  browser: string,
): Promise<PendingReset | null> {
  if (!row?.accountId) return null;
  const state = await selectSecondFactor(db, row.accountId);
  if (state?.status !== 'active') return null;
  const resident = await findResident(db, { id: row.residentId });
  if (!resident) return null;
  return {
    handle: row.id,
    accountId: row.accountId,
    needsSecondFactor: row.purpose === 'reset_sms' && state.level >= 2 && !!state.totpSealed,
    via: row.purpose === 'reset_officer' ? 'officer' : 'sms',
    pin: resident.pin,
    birthDate: resident.birthDate,
    browser,
  };
}

/** Step 2 (online): the SMS code. Null for a wrong, expired or spent code. */
export async function verifyRecoveryCode(
  db: Kysely<DB>,
  codes: CodeBook,
  handle: string,
  typed: string,
  browser: string,
): Promise<PendingReset | null> {
  return pendingOf(db, await codes.verifySmsCode(handle, ['reset_sms'], typed, browser), browser);
}

/** Step 2 (in person): the personal ID and the officer's reset code. */
export async function redeemOfficerResetCode(
  db: Kysely<DB>,
  codes: CodeBook,
  pin: string,
  typed: string,
  browser: string,
): Promise<PendingReset | null> {
  const resident = /^\d{12}$/.test(pin) ? await findResident(db, { pin }) : undefined;
  if (!resident) return null;
  return pendingOf(db, await codes.verifyOfficerCode(resident.id, typed, browser), browser);
}

/** A verified reset still waiting for its password (the page's hidden handle), or null. */
export async function pendingReset(
  db: Kysely<DB>,
  codes: CodeBook,
  handle: string,
  browser: string,
): Promise<PendingReset | null> {
  return pendingOf(db, await codes.verified(handle, ['reset_sms', 'reset_officer'], browser), browser);
}

/** The password rules for this account (the same as everywhere): a problem, or null. */
export const resetPasswordProblem = (p: PendingReset, password: string): PasswordProblem | null =>
  checkNewPassword(password, { pin: p.pin, birthDate: p.birthDate });

/**
 * Step 3: the new password (the caller checked `resetPasswordProblem` and, when `needsSecondFactor`, the second
 * factor). False when the reset was completed already (a second tab) or expired meanwhile.
 */
export async function completeReset(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  codes: CodeBook,
  p: PendingReset,
  password: string,
  ip: string | null,
): Promise<boolean> {
  const hash = await hasher.hash(password);
  const row = await codes.verified(p.handle, ['reset_sms', 'reset_officer'], p.browser);
  if (!row) return false;
  return db.transaction().execute(async (trx) => {
    if (!(await codes.use(row, trx))) return false;
    await markPasswordReset(trx, p.accountId, { hash, via: p.via, ip });
    return true;
  });
}
