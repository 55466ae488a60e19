/**
 * `dinhdanh accounts ...` (officer operations on citizens' e-ID accounts) and `dinhdanh sms outbox`. Every change is
 * an audited officer act: the change and its event commit together, or neither does.
 */
import type { Command } from 'commander';
import { codeBook, enrollInPerson } from '../accounts/index.ts';
import {
  passwordResetCode,
  reactivate,
  resetSecondFactor,
  suspend,
  unlock,
  verifyInPerson,
  viewAccount,
} from '../admin/acts.ts';
import { type Act, type Actor, audited } from '../audit/index.ts';
import { argon2idHasher } from '../credentials/index.ts';
import { createPool } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { deriveCodeKey, loadMasterKey, loadSecretRoot } from '../keys/index.ts';
import { createLimiter } from '../limits/index.ts';
import { findResident } from '../registry/index.ts';
import { listOutbox } from '../sms/index.ts';
import { actDeps, type GetConfig, operatorOf, print, pseudonymOf, readStdin, withDatabase } from './shared.ts';

const PASSWORD_TEXT = {
  blank: 'must not be only spaces',
  too_short: 'at least 8 characters, not counting spaces at either end',
  too_long: 'at most 128 characters',
  common: 'too common',
  personal: 'must not be the personal ID or the birth date',
} as const;

/** What `accounts enroll` prints: the account, and the one-time code unless the citizen typed a password. */
type Enrolled = { account_id: string; set_password_code?: string; expires_at?: string; where?: string };

/** Officer acts on an account found by personal ID: name, description, the act (audited with its change). */
const OFFICER_ACTS = [
  ['suspend', 'suspend an account and end its sessions', suspend],
  ['reactivate', 'reactivate a suspended account', reactivate],
  ['reset-totp', 'remove TOTP and recovery codes (back to level 1)', resetSecondFactor],
] as const;

/** An officer acting from the host's command line. */
const officerActor = (id: string): Actor => ({ type: 'officer', id: String(id).slice(0, 100), via: 'cli' });

/** Adds `sms outbox` and the `accounts` commands to the program. */
export function accountsCommands(cli: Command, getConfig: GetConfig): void {
  cli
    .command('sms')
    .description('text messages (development: without SMS_GATEWAY_URL they go to an outbox table)')
    .command('outbox')
    .description('show the newest messages of the development outbox (they hold one-time codes)')
    .option('--to <phone>', 'only messages to this number (+84...)')
    .option('--limit <n>', 'how many', '20')
    .action(async (o) => {
      const config = getConfig();
      if (config.sms)
        throw new AppError('invalid_input', 'SMS_GATEWAY_URL is set: messages go to the gateway, not the outbox');
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new AppError('invalid_input', '--limit must be a whole number from 1 to 1000');
      await withDatabase(config, async ({ db }) => {
        const messages = await listOutbox(db, { to: o.to, limit });
        print(messages.map((m) => ({ at: m.at.toISOString(), to: m.to, purpose: m.purpose, text: m.body })));
      });
    });

  const accounts = cli.command('accounts').description('citizen e-ID accounts (officer operations)');
  accounts
    .command('enroll')
    .description(
      'in-person level 1 enrollment by an officer who checked the citizen and their card (residents without a registered phone); prints a one-time code with which the citizen chooses a password at /recover/officer, unless --password-stdin',
    )
    .requiredOption('--personal-id <pin>', '12-digit personal identification number')
    .requiredOption('--full-name <name>', 'full name as in the registry')
    .requiredOption('--birthdate <date>', 'YYYY-MM-DD or DD/MM/YYYY')
    .requiredOption('--officer <id>', 'the enrolling officer')
    .option('--password-stdin', 'read the new password from standard input instead (the citizen typed it)')
    .action(async (o) => {
      const config = getConfig();
      const password = o.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : undefined;
      const officer = String(o.officer).slice(0, 100);
      await withDatabase(config, async ({ db }) => {
        const hasher = await argon2idHasher(config.argon2);
        const codeKey = deriveCodeKey(await loadSecretRoot(db, loadMasterKey(config)));
        const actor = { type: 'officer' as const, id: officer };
        const out = await audited(db, actor, 'enrollment', async (trx): Promise<Act<Enrolled>> => {
          const r = await enrollInPerson(trx, hasher, {
            pin: o.personalId,
            fullName: o.fullName,
            birthDate: o.birthdate,
            password,
          });
          if (r.outcome === 'password')
            throw new AppError('invalid_input', `password refused: ${PASSWORD_TEXT[r.problem]}`);
          if (r.outcome === 'invalid_input') throw new AppError('invalid_input', `invalid ${r.field}`);
          if (r.outcome !== 'created') {
            const why = {
              no_resident: 'no resident has this personal ID',
              mismatch: 'the name or birth date does not match the registry',
              inactive: 'the resident is not active in the registry',
              already_enrolled: 'this resident already has an account (reset its password instead)',
            }[r.outcome];
            throw new AppError(r.outcome === 'already_enrolled' ? 'conflict' : 'not_found', why);
          }
          const event = { subject: r.accountId, details: { level: 1, channel: 'in_person' } };
          if (password) return { ...event, result: { account_id: r.accountId } };
          const resident = await findResident(trx, { pin: o.personalId.replace(/[\s.-]/g, '') });
          const issued = await codeBook(trx, codeKey).issueOfficerCode({
            residentId: resident!.id,
            accountId: r.accountId,
            officer,
          });
          return {
            ...event,
            result: {
              account_id: r.accountId,
              set_password_code: issued.code,
              expires_at: issued.expiresAt.toISOString(),
              where: '/recover/officer',
            },
          };
        });
        print(out);
      });
    });
  accounts
    .command('reset-password')
    .description(
      'after checking the citizen in person: print a one-time reset code (60 minutes) with which they choose a new password at /recover/officer; every session ends when they do',
    )
    .requiredOption('--personal-id <pin>', '12-digit personal identification number')
    .requiredOption('--officer <id>', 'the officer who checked the citizen')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        print(await passwordResetCode(actDeps(config, db), officerActor(o.officer), o.personalId));
      });
    });
  accounts
    .command('verify-in-person')
    .description('after checking the citizen in person: print a one-time activation code (15 minutes)')
    .requiredOption('--personal-id <pin>', '12-digit personal identification number')
    .requiredOption('--officer <id>', 'the verifying officer')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        print(await verifyInPerson(actDeps(config, db), officerActor(o.officer), o.personalId));
      });
    });
  accounts
    .command('show')
    .description('show an account (no secrets); the look-up of personal data is itself audited')
    .requiredOption('--personal-id <pin>', '12-digit personal identification number')
    .option('--operator <name>', 'officer id (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        print(await viewAccount(actDeps(config, db), officerActor(operatorOf(o)), o.personalId));
      });
    });
  for (const [name, description, act] of OFFICER_ACTS) {
    accounts
      .command(name)
      .description(description)
      .requiredOption('--personal-id <pin>', '12-digit personal identification number')
      .option('--operator <name>', 'officer id (default: the OS user)')
      .action(async (o) => {
        const config = getConfig();
        await withDatabase(config, async ({ db }) => {
          print(await act(actDeps(config, db), officerActor(operatorOf(o)), o.personalId));
        });
      });
  }
  accounts
    .command('unlock')
    .description('lift a temporary login lock on a personal ID')
    .requiredOption('--personal-id <pin>', '12-digit personal identification number')
    .option('--operator <name>', 'officer id (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      if (!/^\d{12}$/.test(o.personalId)) throw new AppError('invalid_input', '--personal-id must be 12 digits');
      await withDatabase(config, async ({ db, url }) => {
        const key = (await pseudonymOf(config, db))(o.personalId);
        // Not in the transaction: the rate limiter works on a pg pool. The event is written first and the unlock runs
        // before the commit (`outside`): a failed audit write leaves the lock in place, a failed unlock writes no
        // event. Its own connection, so the open transaction cannot starve it of one (DB_POOL_SIZE=1).
        const pool = createPool(url, 1);
        try {
          const limiter = createLimiter(pool, 'login', config.loginLimits);
          await unlock(actDeps(config, db), officerActor(operatorOf(o)), o.personalId, key, (k) => limiter.unlock(k));
        } finally {
          await pool.end();
        }
        process.stdout.write('unlocked\n');
      });
    });
}
