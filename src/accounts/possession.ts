/**
 * Proof of possession of the phone registered to a resident in the national population database: a 6-digit code
 * by SMS, valid 5 minutes, 5 tries (and 10 a day per resident across codes), stored as an HMAC bound to its row (a database dump yields no usable code and
 * no code works for another row). Sending is limited per phone number and per resident: 3 codes in 15 minutes and
 * 10 a day, whatever the personal ID typed, so nobody can flood a citizen's phone. Officers hand out reset codes in
 * person (high entropy, 60 minutes), kept in the same table.
 *
 * Threat note: what is printed on an ID card (number, name, birth date) is not a secret; the code is what proves
 * the person. The registry outcome is never shown: callers show one page, with the last two digits of the
 * registered phone only when a message was (or, over the limit, would have been) sent to it.
 */
import { createHmac, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import {
  type CodeRow,
  insertCodeWithin,
  markUsed,
  markVerified,
  selectLiveCodes,
  selectVerified,
  spendTry,
  voidCodes,
} from './codes.repository.ts';
import { normalizeCode } from './level2.ts';

export type { CodeRow } from './codes.repository.ts';

/** Lifetime of an SMS code. */
export const SMS_CODE_TTL_MS = 5 * 60_000;
/** Tries per SMS code. */
export const SMS_CODE_TRIES = 5;
/** Tries per resident per day, across all their SMS codes (so ten codes a day do not make fifty guesses). */
export const DAILY_TRIES = 10;
/** A code's handle: a UUID, exactly (anything else is refused before the database sees it). */
const HANDLE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** After a code is verified, the citizen has this long to finish (choose a password). */
export const VERIFIED_TTL_MS = 10 * 60_000;
/** Lifetime of an officer's reset code. */
export const OFFICER_CODE_TTL_MS = 60 * 60_000;
/** Codes per phone number (and per resident): at most `max` in the last `windowMs`. */
export const SEND_LIMITS = [
  { windowMs: 15 * 60_000, max: 3 },
  { windowMs: 86_400_000, max: 10 },
];

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** Issues and checks codes with the installation's code key (deriveCodeKey). */
export function codeBook(db: Kysely<DB>, key: Buffer) {
  const hash = (id: string, code: string) => createHmac('sha256', key).update(`${id}:${code}`).digest('base64url');
  const matches = (row: CodeRow, code: string) => {
    const a = Buffer.from(hash(row.id, code));
    const b = Buffer.from(row.codeHash);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  /** The stored binding of a browser (its form nonce, keyed-hashed). */
  const bind = (browser: string) => createHmac('sha256', key).update(`browser:${browser}`).digest('base64url');

  return {
    /**
     * A new SMS code for this phone, or null when the phone (or resident) reached the send limit. The caller sends
     * the code and never stores or logs it.
     */
    async issueSmsCode(input: {
      purpose: 'enroll' | 'reset_sms';
      residentId: string;
      accountId?: string | null;
      phone: string;
      passwordHash?: string | null;
      ip?: string | null;
      /** The browser's form nonce: the code's handle works in this browser only. */
      browser: string;
    }): Promise<{ id: string; code: string } | null> {
      const id = randomUUID();
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const ok = await insertCodeWithin(
        db,
        {
          ...input,
          id,
          accountId: input.accountId ?? null,
          browser: bind(input.browser),
          codeHash: hash(id, code),
          expiresAt: new Date(Date.now() + SMS_CODE_TTL_MS),
        },
        SEND_LIMITS.map((l) => ({ since: new Date(Date.now() - l.windowMs), max: l.max })),
      );
      return ok ? { id, code } : null;
    },

    /** An officer's reset code (4 groups of 4 characters), for an account seen in person. */
    async issueOfficerCode(input: { residentId: string; accountId: string; officer: string }) {
      const id = randomUUID();
      const code = Array.from({ length: 16 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
      const expiresAt = new Date(Date.now() + OFFICER_CODE_TTL_MS);
      await insertCodeWithin(
        db,
        { ...input, id, purpose: 'reset_officer', phone: null, codeHash: hash(id, code), expiresAt },
        [{ since: new Date(Date.now() - 86_400_000), max: 20 }],
      );
      return { code: code.match(/.{4}/g)!.join('-'), expiresAt };
    },

    /**
     * Checks a typed SMS code against the code `id` (one try spent, whatever the result); on success the code is
     * verified and returned. Unknown, expired, spent and wrong all return null.
     */
    async verifySmsCode(
      id: string,
      purposes: CodeRow['purpose'][],
      typed: string,
      browser: string,
    ): Promise<CodeRow | null> {
      const code = typed.replace(/\s/g, '');
      if (!HANDLE.test(id) || !/^\d{6}$/.test(code)) return null;
      const row = await spendTry(db, id, purposes, DAILY_TRIES, bind(browser));
      if (!row || !matches(row, code)) return null;
      return (await markVerified(db, id, VERIFIED_TTL_MS, bind(browser))) ? row : null;
    },

    /** Checks an officer's reset code for a resident; on success it is verified and returned. */
    async verifyOfficerCode(residentId: string, typed: string, browser: string): Promise<CodeRow | null> {
      const code = normalizeCode(typed);
      if (code.length !== 16) return null;
      for (const row of await selectLiveCodes(db, residentId, 'reset_officer')) {
        if (matches(row, code) && (await markVerified(db, row.id, VERIFIED_TTL_MS, bind(browser)))) return row;
      }
      return null;
    },

    /** A verified code still waiting to be used, in the browser that verified it. */
    verified: (id: string, purposes: CodeRow['purpose'][], browser: string) =>
      HANDLE.test(id) ? selectVerified(db, id, purposes, bind(browser)) : Promise.resolve(undefined),

    /** Uses a verified code; every other live code of the resident ends with it. False when it was used already. */
    async use(row: CodeRow, trx: Kysely<DB> = db): Promise<boolean> {
      if (!(await markUsed(trx, row.id))) return false;
      await voidCodes(trx, row.residentId, row.id);
      return true;
    },
  };
}

/** What `codeBook` returns. */
export type CodeBook = ReturnType<typeof codeBook>;
