/**
 * Level 2: verified in person by an officer, plus a second factor (TOTP, or a single-use recovery code).
 *
 * Threat note: activation codes and recovery codes are high-entropy, single-use, stored as SHA-256 and consumed by
 * a conditional UPDATE (a code works once, even when two requests race). TOTP secrets are sealed under the master
 * key (AES-256-GCM, bound to the account id); an accepted TOTP step is stored and never accepted again (replay).
 */
import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import { checkTotp, hashSecret, newTotpSecret } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { seal, unseal } from '../keys/index.ts';
import {
  activateTotp,
  advanceTotpStep,
  insertActivationCode,
  markVerifiedInPerson,
  type SecondFactorRecord,
  selectAccountIdByPin,
  selectSecondFactor,
  setPendingTotp,
  useActivationCode,
  useRecoveryCode,
} from './accounts.repository.ts';

/** Lifetime of an activation code. */
export const ACTIVATION_TTL_MS = 15 * 60_000;
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I

function randomCode(groups: number): string {
  const part = () => Array.from({ length: 4 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  return Array.from({ length: groups }, part).join('-');
}

/** Codes as typed: case and separators do not matter. */
export const normalizeCode = (code: string) => code.toUpperCase().replace(/[^A-Z0-9]/g, '');

/** Issues a one-time activation code after an officer's in-person verification. */
export async function issueActivationCode(
  db: Kysely<DB>,
  pin: string,
  officer: string,
): Promise<{ accountId: string; code: string; expiresAt: Date }> {
  const accountId = await selectAccountIdByPin(db, pin);
  if (!accountId)
    throw new AppError('not_found', 'this personal ID has no e-ID account; the citizen enrolls at level 1 first');
  const state = await selectSecondFactor(db, accountId);
  if (state?.status !== 'active') throw new AppError('conflict', 'the account is not active');
  const code = randomCode(4);
  const expiresAt = new Date(Date.now() + ACTIVATION_TTL_MS);
  await insertActivationCode(db, { accountId, codeSha256: hashSecret(normalizeCode(code)), officer, expiresAt });
  return { accountId, code, expiresAt };
}

/**
 * Who asks to enroll a second factor: the session's uid and whether it signed in with the account's current
 * second factor (level 2 now). `validMs`: how long an in-person check stays usable (IN_PERSON_VALID_HOURS).
 */
export interface EnrollmentAuthority {
  sessionUid: string;
  level2Session: boolean;
  validMs: number;
}

type Authority = { kind: 'ticket'; sessionUid: string; validSince: Date } | { kind: 'second_factor' };

/**
 * What lets this session enroll or replace a second factor, if anything: the current second factor (a level-2
 * session of a level-2 account) or an unspent in-person check redeemed in this very session within the window.
 * The password alone never does: not after an officer's reset, not with an old or spent check, not from another
 * session than the one that redeemed the code.
 */
function authorityOf(state: SecondFactorRecord, who: EnrollmentAuthority): Authority | null {
  if (who.level2Session && state.level >= 2 && state.totpSealed) return { kind: 'second_factor' };
  const validSince = new Date(Date.now() - who.validMs);
  const ticket =
    state.verifiedInPersonAt &&
    state.verifiedInPersonAt > validSince &&
    !state.inPersonSpentAt &&
    state.inPersonSession === who.sessionUid;
  return ticket ? { kind: 'ticket', sessionUid: who.sessionUid, validSince } : null;
}

/** True when this session may enroll (or replace) a second factor now (see `authorityOf`). */
export async function mayEnrollSecondFactor(
  db: Kysely<DB>,
  accountId: string,
  who: EnrollmentAuthority,
): Promise<boolean> {
  const state = await selectSecondFactor(db, accountId);
  return !!state && state.status === 'active' && authorityOf(state, who) !== null;
}

/** Redeems an activation code for this account in this session; on success the session holds a fresh ticket. */
export async function redeemActivationCode(
  db: Kysely<DB>,
  accountId: string,
  code: string,
  sessionUid: string,
): Promise<boolean> {
  const officer = await useActivationCode(db, accountId, hashSecret(normalizeCode(code)));
  if (!officer) return false;
  await markVerifiedInPerson(db, accountId, officer, sessionUid);
  return true;
}

/** Starts (or restarts) TOTP enrollment; returns the new secret to show as QR code and key. */
export async function startTotpEnrollment(
  db: Kysely<DB>,
  master: Buffer,
  accountId: string,
  who: EnrollmentAuthority,
): Promise<string> {
  const state = await selectSecondFactor(db, accountId);
  if (!state || !authorityOf(state, who))
    throw new AppError(
      'credentials_rejected',
      'a second factor needs your current one, or an in-person check redeemed in this session',
    );
  const secret = newTotpSecret();
  await setPendingTotp(db, accountId, seal(master, secret, `totp:${accountId}`));
  return secret;
}

/** The pending secret, if enrollment was started. */
export async function pendingTotpSecret(db: Kysely<DB>, master: Buffer, accountId: string): Promise<string | null> {
  const state = await selectSecondFactor(db, accountId);
  return state?.totpPendingSealed ? unseal(master, state.totpPendingSealed, `totp:${accountId}`) : null;
}

/** Confirms TOTP with a valid code; the account becomes level 2. Returns 10 recovery codes (shown once). */
export async function confirmTotp(
  db: Kysely<DB>,
  master: Buffer,
  accountId: string,
  code: string,
  who: EnrollmentAuthority,
): Promise<string[] | null> {
  const state = await selectSecondFactor(db, accountId);
  const authority = state && authorityOf(state, who);
  if (!authority) return null;
  const secret = await pendingTotpSecret(db, master, accountId);
  if (!secret) return null;
  const step = await checkTotp(secret, code.trim(), null);
  if (step === null) return null;
  const codes = Array.from({ length: 10 }, () => randomCode(3));
  const ok = await activateTotp(
    db,
    accountId,
    step,
    codes.map((c) => hashSecret(normalizeCode(c))),
    authority,
  );
  return ok ? codes : null;
}

/** Checks a second factor: a TOTP code (not replayed) or an unused recovery code. */
export async function verifySecondFactor(
  db: Kysely<DB>,
  master: Buffer,
  accountId: string,
  code: string,
): Promise<'otp' | 'recovery' | null> {
  const state = await selectSecondFactor(db, accountId);
  if (!state?.totpSealed || state.level < 2) return null;
  const typed = code.trim();
  if (/^\d{6}$/.test(typed)) {
    const secret = unseal(master, state.totpSealed, `totp:${accountId}`);
    const step = await checkTotp(secret, typed, state.totpLastStep);
    return step !== null && (await advanceTotpStep(db, accountId, step)) ? 'otp' : null;
  }
  return (await useRecoveryCode(db, accountId, hashSecret(normalizeCode(typed)))) ? 'recovery' : null;
}

/** Level-2 state for pages and officers. */
export async function secondFactorState(db: Kysely<DB>, accountId: string) {
  const s = await selectSecondFactor(db, accountId);
  return (
    s && {
      level: s.level,
      status: s.status,
      verifiedInPersonAt: s.verifiedInPersonAt,
      verifiedBy: s.verifiedBy,
      totp: !!s.totpSealed,
      totpPending: !!s.totpPendingSealed,
      recoveryCodesLeft: s.recoveryCodesLeft,
    }
  );
}

/** Re-seals every TOTP secret under a new master key (inside the caller's transaction). */
export async function rewrapTotpSecrets(db: Kysely<DB>, from: Buffer, to: Buffer): Promise<number> {
  const rows = await db
    .selectFrom('accounts')
    .select(['id', 'totp_secret_sealed', 'totp_pending_sealed'])
    .where((eb) => eb.or([eb('totp_secret_sealed', 'is not', null), eb('totp_pending_sealed', 'is not', null)]))
    .execute();
  const again = (v: string | null, id: string) => (v ? seal(to, unseal(from, v, `totp:${id}`), `totp:${id}`) : null);
  for (const r of rows) {
    await db
      .updateTable('accounts')
      .set({
        totp_secret_sealed: again(r.totp_secret_sealed, r.id),
        totp_pending_sealed: again(r.totp_pending_sealed, r.id),
      })
      .where('id', '=', r.id)
      .execute();
  }
  return rows.length;
}
