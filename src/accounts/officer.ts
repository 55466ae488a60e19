/** Officer operations on a citizen's account, found by personal ID. The CLI audits each one. */
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { findResident } from '../registry/index.ts';
import { clearSecondFactor, selectAccountIdByPin, setAccountStatus } from './accounts.repository.ts';
import { secondFactorState } from './level2.ts';

async function accountOf(db: Kysely<DB>, pin: string): Promise<string> {
  if (!/^\d{12}$/.test(pin)) throw new AppError('invalid_input', '--personal-id must be 12 digits');
  const id = await selectAccountIdByPin(db, pin);
  if (!id) throw new AppError('not_found', 'no e-ID account for this personal ID');
  return id;
}

/** What an officer may see: identity summary and account state (no secrets). */
export async function showAccount(db: Kysely<DB>, pin: string) {
  const accountId = await accountOf(db, pin);
  const resident = await findResident(db, { pin });
  const state = await secondFactorState(db, accountId);
  return {
    accountId,
    fullName: resident?.fullName,
    birthDate: resident?.birthDate,
    residentStatus: resident?.status,
    ...state,
  };
}

/** Suspends an account; `revokeSessions` ends its sessions and grants at once. */
export async function suspendAccount(
  db: Kysely<DB>,
  pin: string,
  revokeSessions: (accountIds: string[]) => Promise<void>,
): Promise<string> {
  const accountId = await accountOf(db, pin);
  await setAccountStatus(db, accountId, 'suspended');
  await revokeSessions([accountId]);
  return accountId;
}

/** Reactivates a suspended account. */
export async function reactivateAccount(db: Kysely<DB>, pin: string): Promise<string> {
  const accountId = await accountOf(db, pin);
  await setAccountStatus(db, accountId, 'active');
  return accountId;
}

/** Removes TOTP and recovery codes (lost phone): the account is level 1 until the citizen enrolls TOTP again. */
export async function resetTotp(db: Kysely<DB>, pin: string): Promise<string> {
  const accountId = await accountOf(db, pin);
  await clearSecondFactor(db, accountId);
  return accountId;
}

export { accountOf as accountIdForPin };
