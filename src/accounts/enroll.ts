/**
 * Level 1 self-enrollment: a citizen proves who they are against the registry (personal ID, full name, date of
 * birth) and chooses a password.
 *
 * Threat note: "no such resident", "details do not match", "resident not active" and "already enrolled" are
 * distinguished here only for the audit log; callers show one answer. The password is hashed before the registry is
 * consulted, so every path costs the same argon2 work. Two concurrent enrollments of one resident: the unique
 * constraint on accounts.resident_id lets exactly one through.
 */
import type { Kysely } from 'kysely';
import { checkNewPassword, type PasswordHasher, type PasswordProblem } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { comparableName, findResident, isPinShape } from '../registry/index.ts';
import { insertAccount } from './accounts.repository.ts';

/** What the citizen types. */
export interface EnrollmentInput {
  pin: string;
  fullName: string;
  birthDate: string;
  password: string;
}

/** The outcome; only `password` problems may be shown precisely, the rest collapse to one message. */
export type EnrollmentResult =
  | { outcome: 'created'; accountId: string }
  | { outcome: 'password'; problem: PasswordProblem }
  | { outcome: 'invalid_input'; field: 'pin' | 'birthDate' | 'fullName' }
  | { outcome: 'no_resident' | 'mismatch' | 'inactive' | 'already_enrolled' };

/** Parses YYYY-MM-DD or DD/MM/YYYY into YYYY-MM-DD; null when it is not a real date. */
export function parseBirthDate(s: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s.trim()) ?? /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(s.trim());
  if (!m) return null;
  const [y, mo, d] = m[1]!.length === 4 ? [m[1], m[2], m[3]] : [m[3], m[2], m[1]];
  const iso = `${y}-${mo}-${d}`;
  const date = new Date(`${iso}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(iso) ? iso : null;
}

/** Enrolls at level 1 when the details match an active resident without an account. */
export async function enrollLevel1(
  db: Kysely<DB>,
  hasher: PasswordHasher,
  input: EnrollmentInput,
): Promise<EnrollmentResult> {
  const pin = input.pin.replace(/[\s.-]/g, '');
  if (!isPinShape(pin)) return { outcome: 'invalid_input', field: 'pin' };
  const birthDate = parseBirthDate(input.birthDate);
  if (!birthDate) return { outcome: 'invalid_input', field: 'birthDate' };
  const name = comparableName(input.fullName);
  if (!name || name.length > 200) return { outcome: 'invalid_input', field: 'fullName' };
  const problem = checkNewPassword(input.password, { pin, birthDate });
  if (problem) return { outcome: 'password', problem };
  const hash = await hasher.hash(input.password); // before any registry lookup: same cost on every path
  const resident = await findResident(db, { pin });
  if (!resident) return { outcome: 'no_resident' };
  if (comparableName(resident.fullName) !== name || resident.birthDate !== birthDate) return { outcome: 'mismatch' };
  if (resident.status !== 'active') return { outcome: 'inactive' };
  try {
    return {
      outcome: 'created',
      accountId: await insertAccount(db, { residentId: resident.id, passwordHash: hash, level: 1 }),
    };
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return { outcome: 'already_enrolled' };
    throw err;
  }
}
