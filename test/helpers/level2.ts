/** Takes an account to level 2 the way an officer and the citizen would (activation code, TOTP), for tests. */
import assert from 'node:assert/strict';
import { type Kysely, sql } from 'kysely';
import {
  confirmTotp,
  issueActivationCode,
  redeemActivationCode,
  startTotpEnrollment,
} from '../../src/accounts/index.ts';
import { currentTotp } from '../../src/credentials/index.ts';
import type { DB } from '../../src/db/index.ts';

/**
 * Verifies the account "in person" and enrolls TOTP; returns the secret and `nextCode`, the code of the step after
 * the last accepted one (each step is accepted once; ±1 step of drift is allowed).
 */
export async function makeLevel2(db: Kysely<DB>, master: Buffer, pin: string, accountId: string) {
  const { code } = await issueActivationCode(db, pin, 'CA-TEST');
  const who = { sessionUid: 'test-setup', level2Session: false, validMs: 60_000 };
  assert.ok(await redeemActivationCode(db, accountId, code, who.sessionUid));
  const secret = await startTotpEnrollment(db, master, accountId, who);
  const first = await currentTotp(secret, (Math.floor(Date.now() / 30000) - 1) * 30);
  assert.ok(await confirmTotp(db, master, accountId, first, who));
  return {
    secret,
    async nextCode(): Promise<string> {
      const { rows } = await sql<{
        s: string;
      }>`select totp_last_step as s from accounts where id = ${accountId}`.execute(db);
      return currentTotp(secret, Math.max(Number(rows[0]?.s) + 1, Math.floor(Date.now() / 30000) - 1) * 30);
    },
  };
}
