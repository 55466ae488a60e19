/**
 * Level 1 enrollment. The details printed on an ID card (personal ID, full name, date of birth) only find the
 * resident; what proves the person is possession of the phone registered to them in the national population
 * database: online, the account exists only once the SMS code sent to that phone is entered (`startEnrollment`,
 * then `finishEnrollment`). A resident with no registered phone enrolls in person (`enrollInPerson`, an officer act).
 *
 * Threat note: "no such resident", "details do not match", "resident not active", "no phone", "already enrolled"
 * and "too many codes" are distinguished here only for the audit log; the page shows one answer (the last two
 * digits of the phone only when a message went, or would have gone, to the resident's own phone). An enrollment
 * attempt for an enrolled resident sends them a notice instead of a code. The password is hashed before the
 * registry is consulted, so every path costs the same argon2 work. Two concurrent enrollments of one resident: the
 * unique constraint on accounts.resident_id lets exactly one through.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { checkNewPassword, type PasswordHasher, type PasswordProblem } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { comparableName, findResident, isPinShape, type Resident } from '../registry/index.ts';
import type { SmsSender } from '../sms/index.ts';
import { insertAccount, selectAccountIdByPin } from './accounts.repository.ts';
import type { CodeBook } from './possession.ts';

/** What the citizen types. */
export interface EnrollmentInput {
  pin: string;
  fullName: string;
  birthDate: string;
  password: string;
}

/** Input problems, shown precisely (they do not depend on the registry). */
export type InputProblem =
  | { outcome: 'password'; problem: PasswordProblem }
  | { outcome: 'invalid_input'; field: 'pin' | 'birthDate' | 'fullName' };

/** Registry outcomes that collapse into one answer. */
export type NoMatch = 'no_resident' | 'mismatch' | 'inactive';

/** The outcome of an in-person enrollment (an officer sees it precisely). */
export type EnrollmentResult =
  | { outcome: 'created'; accountId: string }
  | InputProblem
  | { outcome: NoMatch | 'already_enrolled' };

/**
 * The outcome of the first online step. `handle` names the code to enter next (a random one that matches nothing
 * when no code was sent, so the next page looks the same); `phone` is set when a message went (or, over the send
 * limit, would have gone) to the resident's registered phone.
 */
export type EnrollmentStart =
  | InputProblem
  | {
      outcome: 'code_sent' | 'already_enrolled' | 'throttled' | 'no_phone' | NoMatch;
      handle: string;
      phone: string | null;
      residentId?: string;
    };

/** Parses YYYY-MM-DD or DD/MM/YYYY into YYYY-MM-DD; null when it is not a real date. */
export function parseBirthDate(s: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s.trim()) ?? /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(s.trim());
  if (!m) return null;
  const [y, mo, d] = m[1]!.length === 4 ? [m[1], m[2], m[3]] : [m[3], m[2], m[1]];
  const iso = `${y}-${mo}-${d}`;
  const date = new Date(`${iso}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(iso) ? iso : null;
}

/** The card details, checked for shape, and the resident they name (if they match an active one). */
export async function matchResident(
  db: Kysely<DB>,
  input: { pin: string; fullName: string; birthDate: string },
): Promise<
  | { outcome: 'invalid_input'; field: 'pin' | 'birthDate' | 'fullName' }
  | { outcome: NoMatch }
  | { outcome: 'match'; resident: Resident }
> {
  const pin = input.pin.replace(/[\s.-]/g, '');
  if (!isPinShape(pin)) return { outcome: 'invalid_input', field: 'pin' };
  const birthDate = parseBirthDate(input.birthDate);
  if (!birthDate) return { outcome: 'invalid_input', field: 'birthDate' };
  const name = comparableName(input.fullName);
  if (!name || name.length > 200) return { outcome: 'invalid_input', field: 'fullName' };
  const resident = await findResident(db, { pin });
  if (!resident) return { outcome: 'no_resident' };
  if (comparableName(resident.fullName) !== name || resident.birthDate !== birthDate) return { outcome: 'mismatch' };
  if (resident.status !== 'active') return { outcome: 'inactive' };
  return { outcome: 'match', resident };
}

/** Shape checks of the input (including the password rules), before any registry lookup. */
function inputProblem(input: EnrollmentInput): InputProblem | null {
  const pin = input.pin.replace(/[\s.-]/g, '');
  if (!isPinShape(pin)) return { outcome: 'invalid_input', field: 'pin' };
  const birthDate = parseBirthDate(input.birthDate);
  if (!birthDate) return { outcome: 'invalid_input', field: 'birthDate' };
  const name = comparableName(input.fullName);
  if (!name || name.length > 200) return { outcome: 'invalid_input', field: 'fullName' };
  const problem = checkNewPassword(input.password, { pin, birthDate });
  return problem ? { outcome: 'password', problem } : null;
}

/** SMS texts (unaccented Vietnamese, as carriers' brandname messages are; GSM-7 keeps them to one segment). */
export const SMS_TEXT = {
  enroll: (code: string) =>
    `DINHDANH: Ma xac thuc dang ky tai khoan dinh danh dien tu cua ban la ${code}, hieu luc 5 phut. KHONG chia se ma nay voi bat ky ai.`,
  enrolled: () =>
    'DINHDANH: Co nguoi vua thu dang ky tai khoan dinh danh bang thong tin cua ban. Ban da co tai khoan; neu quen mat khau, chon "Quen mat khau?" khi dang nhap.',
  reset: (code: string) =>
    `DINHDANH: Ma dat lai mat khau tai khoan dinh danh cua ban la ${code}, hieu luc 5 phut. KHONG chia se ma nay voi bat ky ai.`,
  resetDone: (when: string) =>
    `DINHDANH: Mat khau tai khoan dinh danh cua ban da duoc dat lai luc ${when}. Neu khong phai ban, hay den co quan cong an gan nhat.`,
};

/**
 * First online step: checks the details, and for an active resident without an account sends a code to their
 * registered phone (the chosen password waits, hashed, with the code).
 */
export async function startEnrollment(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  codes: CodeBook,
  sms: SmsSender,
  input: EnrollmentInput,
  ip: string | null,
  browser: string,
): Promise<EnrollmentStart> {
  const problem = inputProblem(input);
  if (problem) return problem;
  const passwordHash = await hasher.hash(input.password); // before any registry lookup: same cost on every path
  const decoy = randomUUID();
  const m = await matchResident(db, input);
  if (m.outcome === 'invalid_input') return m; // unreachable: inputProblem checked the same
  if (m.outcome !== 'match') return { outcome: m.outcome, handle: decoy, phone: null };
  const { resident } = m;
  if (!resident.phone) return { outcome: 'no_phone', handle: decoy, phone: null, residentId: resident.id };
  if (await selectAccountIdByPin(db, resident.pin)) {
    // Tell the citizen on their own phone (at most as often as codes go), not the person at the keyboard.
    const notice = await codes.issueSmsCode({
      purpose: 'enroll',
      residentId: resident.id,
      phone: resident.phone,
      ip,
      browser,
    });
    if (notice) await sms.send({ to: resident.phone, text: SMS_TEXT.enrolled(), purpose: 'notice' });
    return { outcome: 'already_enrolled', handle: decoy, phone: resident.phone, residentId: resident.id };
  }
  const issued = await codes.issueSmsCode({
    purpose: 'enroll',
    residentId: resident.id,
    phone: resident.phone,
    passwordHash,
    ip,
    browser,
  });
  if (!issued) return { outcome: 'throttled', handle: decoy, phone: resident.phone, residentId: resident.id };
  await sms.send({ to: resident.phone, text: SMS_TEXT.enroll(issued.code), purpose: 'enroll' });
  return { outcome: 'code_sent', handle: issued.id, phone: resident.phone, residentId: resident.id };
}

/** Second online step: the code from the phone creates the account. */
export async function finishEnrollment(
  db: Kysely<DB>,
  codes: CodeBook,
  handle: string,
  typed: string,
  browser: string,
): Promise<{ outcome: 'created'; accountId: string } | { outcome: 'wrong_code' | 'already_enrolled' | 'inactive' }> {
  const row = await codes.verifySmsCode(handle, ['enroll'], typed, browser);
  if (!row?.passwordHash) return { outcome: 'wrong_code' };
  const passwordHash = row.passwordHash;
  try {
    return await db.transaction().execute(async (trx) => {
      if (!(await codes.use(row, trx))) return { outcome: 'wrong_code' as const };
      const resident = await findResident(trx, { id: row.residentId });
      if (resident?.status !== 'active') return { outcome: 'inactive' as const };
      const accountId = await insertAccount(trx, { residentId: row.residentId, passwordHash, level: 1 });
      return { outcome: 'created' as const, accountId };
    });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return { outcome: 'already_enrolled' };
    throw err;
  }
}

/**
 * In-person enrollment by an officer who checked the citizen and their card (also the only way for a resident
 * without a registered phone). Without a password the account gets an unusable one, and the officer hands over a
 * reset code with which the citizen chooses theirs (`/recover`), so the password never passes through the officer.
 */
export async function enrollInPerson(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  input: Omit<EnrollmentInput, 'password'> & { password?: string },
): Promise<EnrollmentResult> {
  const password = input.password ?? randomBytes(32).toString('base64url');
  const problem = inputProblem({ ...input, password });
  if (problem) return problem;
  const passwordHash = await hasher.hash(password);
  const m = await matchResident(db, input);
  if (m.outcome !== 'match') return m;
  try {
    return {
      outcome: 'created',
      accountId: await insertAccount(db, { residentId: m.resident.id, passwordHash, level: 1 }),
    };
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return { outcome: 'already_enrolled' };
    throw err;
  }
}
