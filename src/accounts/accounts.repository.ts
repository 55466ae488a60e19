/** Queries over `accounts` (joined with `residents` where login needs the number). */
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';

/** What login needs to know about an account found by personal identification number. */
export interface LoginRecord {
  accountId: string;
  passwordHash: string;
  level: number;
  accountStatus: string;
  residentStatus: string;
}

export async function selectLoginRecord(db: Kysely<DB>, pin: string): Promise<LoginRecord | undefined> {
  const r = await db
    .selectFrom('accounts')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select([
      'accounts.id',
      'accounts.password_hash',
      'accounts.level',
      'accounts.status as account_status',
      'residents.status as resident_status',
    ])
    .where('residents.pin', '=', pin)
    .executeTakeFirst();
  return (
    r && {
      accountId: r.id,
      passwordHash: r.password_hash,
      level: r.level,
      accountStatus: r.account_status,
      residentStatus: r.resident_status,
    }
  );
}

/** An account with its resident id. */
export interface AccountRecord {
  id: string;
  residentId: string;
  level: number;
  status: string;
  email: string | null;
  phoneNumber: string | null;
}

export async function selectAccount(db: Kysely<DB>, id: string): Promise<AccountRecord | undefined> {
  const r = await db
    .selectFrom('accounts')
    .select(['id', 'resident_id', 'level', 'status', 'email', 'phone_number'])
    .where('id', '=', id)
    .executeTakeFirst();
  return (
    r && {
      id: r.id,
      residentId: r.resident_id,
      level: r.level,
      status: r.status,
      email: r.email,
      phoneNumber: r.phone_number,
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
