/** Queries over `verification_codes` (see possession.ts). */
import { type Kysely, sql } from 'kysely';
import { type DB, deleteOlderThan } from '../db/index.ts';

/** Tries each code starts with (the column's default). */
const TRIES = 5;

/** A code row as the services see it (the hash included, to be compared in constant time). */
export interface CodeRow {
  id: string;
  purpose: 'enroll' | 'reset_sms' | 'reset_officer';
  residentId: string;
  accountId: string | null;
  phone: string | null;
  codeHash: string;
  passwordHash: string | null;
  officer: string | null;
}

const COLUMNS = [
  'id',
  'purpose',
  'resident_id as residentId',
  'account_id as accountId',
  'phone',
  'code_hash as codeHash',
  'password_hash as passwordHash',
  'officer',
] as const;

/**
 * Inserts a code unless the phone (or resident) already had `max` codes since each window's start; serialized per
 * phone by a transaction-scoped advisory lock, so parallel requests cannot exceed the limit. Returns false when
 * the limit is reached.
 */
export async function insertCodeWithin(
  db: Kysely<DB>,
  row: {
    id: string;
    purpose: CodeRow['purpose'];
    residentId: string;
    accountId: string | null;
    phone: string | null;
    codeHash: string;
    passwordHash?: string | null;
    officer?: string | null;
    ip?: string | null;
    browser?: string | null;
    expiresAt: Date;
  },
  limits: { since: Date; max: number }[],
): Promise<boolean> {
  const run = async (trx: Kysely<DB>) => {
    const lockKey = row.phone ?? row.residentId;
    await sql`select pg_advisory_xact_lock(hashtextextended(${`code:${lockKey}`}, 0))`.execute(trx);
    for (const { since, max } of limits) {
      const r = await trx
        .selectFrom('verification_codes')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('created_at', '>', since)
        // Every SMS counts toward one allowance per phone, whatever it was for; officer codes have their own.
        .where('purpose', 'in', row.purpose === 'reset_officer' ? ['reset_officer'] : ['enroll', 'reset_sms'])
        .where((eb) =>
          row.phone
            ? eb.or([eb('phone', '=', row.phone), eb('resident_id', '=', row.residentId)])
            : eb('resident_id', '=', row.residentId),
        )
        .executeTakeFirstOrThrow();
      if (Number(r.n) >= max) return false;
    }
    await trx
      .insertInto('verification_codes')
      .values({
        id: row.id,
        purpose: row.purpose,
        resident_id: row.residentId,
        account_id: row.accountId,
        phone: row.phone,
        code_hash: row.codeHash,
        password_hash: row.passwordHash ?? null,
        officer: row.officer ?? null,
        ip: row.ip ?? null,
        browser: row.browser ?? null,
        expires_at: row.expiresAt,
      })
      .execute();
    return true;
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

/**
 * Spends one try of a live, unverified code (atomically: parallel guesses each spend one) and returns it for the
 * comparison; undefined when it is unknown, expired, used, verified or out of tries.
 */
export async function spendTry(
  db: Kysely<DB>,
  id: string,
  purposes: CodeRow['purpose'][],
  dailyTries: number,
  browser: string,
) {
  return (
    db
      .updateTable('verification_codes')
      .set((eb) => ({ tries_left: eb('tries_left', '-', 1) }))
      .where('id', '=', id)
      .where('browser', '=', browser)
      .where('purpose', 'in', purposes)
      .where('tries_left', '>', 0)
      .where('expires_at', '>', sql<Date>`now()`)
      .where('verified_at', 'is', null)
      .where('used_at', 'is', null)
      // At most `dailyTries` tries a day for one resident, across all their codes: many codes do not multiply guesses.
      .where(
        sql<boolean>`(select coalesce(sum(${TRIES} - v.tries_left), 0) from verification_codes v
        where v.resident_id = verification_codes.resident_id and v.purpose <> 'reset_officer'
          and v.created_at > now() - interval '1 day') < ${dailyTries}`,
      )
      .returning(COLUMNS)
      .executeTakeFirst() as Promise<CodeRow | undefined>
  );
}

/**
 * Live, unverified codes of a resident for a purpose (officer reset codes are found by personal ID). Nothing is
 * spent: an officer's code has 80 bits, so a stranger's guesses must not use up the code the citizen was handed.
 */
export async function selectLiveCodes(db: Kysely<DB>, residentId: string, purpose: CodeRow['purpose']) {
  return db
    .selectFrom('verification_codes')
    .select(COLUMNS)
    .where('resident_id', '=', residentId)
    .where('purpose', '=', purpose)
    .where('expires_at', '>', sql<Date>`now()`)
    .where('verified_at', 'is', null)
    .where('used_at', 'is', null)
    .execute() as Promise<CodeRow[]>;
}

/** Marks a code verified (once), for this browser, and gives it `ttlMs` more to be used. */
export async function markVerified(db: Kysely<DB>, id: string, ttlMs: number, browser: string): Promise<boolean> {
  const r = await db
    .updateTable('verification_codes')
    .set({ verified_at: new Date(), expires_at: new Date(Date.now() + ttlMs), browser })
    .where('id', '=', id)
    .where('verified_at', 'is', null)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** A verified, unused, live code, in the browser that verified it. */
export async function selectVerified(db: Kysely<DB>, id: string, purposes: CodeRow['purpose'][], browser: string) {
  return db
    .selectFrom('verification_codes')
    .select(COLUMNS)
    .where('id', '=', id)
    .where('purpose', 'in', purposes)
    .where('browser', '=', browser)
    .where('verified_at', 'is not', null)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst() as Promise<CodeRow | undefined>;
}

/** Uses a verified code (once: of racing requests, one wins). */
export async function markUsed(db: Kysely<DB>, id: string): Promise<boolean> {
  const r = await db
    .updateTable('verification_codes')
    .set({ used_at: new Date() })
    .where('id', '=', id)
    .where('verified_at', 'is not', null)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Every other live code of the account or resident ends (a reset done one way voids the others). */
export async function voidCodes(db: Kysely<DB>, residentId: string, exceptId: string): Promise<void> {
  await db
    .updateTable('verification_codes')
    .set({ used_at: new Date() })
    .where('resident_id', '=', residentId)
    .where('id', '<>', exceptId)
    .where('used_at', 'is', null)
    .execute();
}

/**
 * Deletes codes expired for more than a day (kept a day for the send limits), `batch` rows per statement until none
 * are left: each statement is its own short transaction, and rows another node is deleting are skipped.
 */
export function deleteExpiredCodes(db: Kysely<DB>, batch = 1000): Promise<number> {
  return deleteOlderThan(db, 'verification_codes', 'expires_at', new Date(Date.now() - 86_400_000), batch);
}
