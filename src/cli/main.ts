/**
 * `dinhdanh` command line: start, migrate, seed, clients. Every command validates configuration first and prints
 * one clear line per problem; errors never print a stack trace.
 */
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command, CommanderError, Option } from 'commander';
import {
  accountIdForPin,
  codeBook,
  enrollInPerson,
  issueActivationCode,
  reactivateAccount,
  resetTotp,
  rewrapTotpSecrets,
  showAccount,
  suspendAccount,
} from '../accounts/index.ts';
import { archiveEvents, exportEvents, recordEvent, verifyChain } from '../audit/index.ts';
import { addClient, listClients } from '../clients/index.ts';
import { type Config, ConfigError, describeConfig, loadConfig } from '../config/index.ts';
import { argon2idHasher } from '../credentials/index.ts';
import { type Database, migrateToLatest, openDatabase } from '../db/index.ts';
import { AppError } from '../errors.ts';
import {
  activateKey,
  deriveCodeKey,
  generateKey,
  listKeys,
  loadKeyMaterial,
  loadMasterKey,
  loadSecretRoot,
  pinPseudonymizer,
  retireKey,
  revokeKey,
  rewrapKeys,
  rewrapSecrets,
  rotateCookieKeys,
  rotateKey,
  SIGNING_ALGS,
} from '../keys/index.ts';
import { createLimiter } from '../limits/index.ts';
import { createLogger, startService } from '../main.ts';
import { requestSessionTermination } from '../oidc/index.ts';
import { findResident } from '../registry/index.ts';
import { DEMO, seedDemo } from '../seed/demo.ts';
import { listOutbox } from '../sms/index.ts';
import { registryCommands } from './registry.ts';

/** The person running a command: `--operator`, else the OS user. */
function operatorOf(o: { operator?: string }): string {
  return (o.operator ?? os.userInfo().username).slice(0, 100);
}

/** The personal-ID pseudonym function of this installation (as the service computes it). */
async function pseudonymOf(config: Config, db: Database['db']): Promise<(pin: string) => string> {
  return pinPseudonymizer(await loadSecretRoot(db, loadMasterKey(config)));
}

/** Opens the configured database (joining or starting the embedded server), runs `fn`, closes. */
async function withDatabase<T>(config: Config, fn: (d: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(config);
  try {
    await migrateToLatest(database.db);
    return await fn(database);
  } finally {
    await database.close();
  }
}

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const collect = (value: string, previous: string[]) => [...previous, value];

/** Builds the program; `config` is loaded lazily so `--help` works with a broken environment. */
export function program(getConfig: () => Config = () => loadConfig()): Command {
  const cli = new Command('dinhdanh').description('National e-identity OpenID Connect provider').exitOverride();

  cli
    .command('start')
    .description('run the service (embedded PostgreSQL unless DATABASE_URL is set)')
    .action(async () => {
      const config = getConfig();
      const log = createLogger(config);
      // A stray rejected promise is a bug to log, not a reason to drop every citizen's request on this node.
      process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
      const service = await startService(config, { log });
      const lines = [
        `dinhdanh is listening on ${service.url}`,
        `  discovery: ${service.url}/.well-known/openid-configuration`,
        `  database:  ${config.databaseUrl ? 'external PostgreSQL (DATABASE_URL)' : `embedded PostgreSQL in ${config.dataDir}`}`,
      ];
      // The demo login exists only where demo data was seeded: now, or earlier into the embedded database.
      if (service.seeded || (!config.databaseUrl && config.demoSeed !== 'never')) {
        lines.push(
          '  demo citizen:  personal ID 001090012345, password demo-password-2026',
          `  demo portal:   client_id ${DEMO.clientId} (public, PKCE S256), redirect_uri ${DEMO.redirectUri}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      // First signal: a graceful stop (drain, finish what is in flight, write the audit queue), exit 0.
      // Another signal later than 2 s after it: stop at once (exit 1). Sooner, it is the same request delivered
      // twice (Ctrl-C reaches both npm and node, and npm forwards it).
      let stoppingSince = 0;
      const stop = () => {
        if (stoppingSince) {
          if (Date.now() - stoppingSince > 2000) process.exit(1);
          return;
        }
        stoppingSince = Date.now();
        service.close().then(
          () => process.exit(0),
          (err) => {
            process.stderr.write(`dinhdanh: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop).on('SIGTERM', stop);
    });

  cli
    .command('migrate')
    .description('apply pending database migrations')
    .action(async () => {
      const database = await openDatabase(getConfig());
      try {
        const applied = await migrateToLatest(database.db);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await database.close();
      }
    });

  cli
    .command('seed')
    .description('load demo data')
    .requiredOption('--demo', 'synthetic residents, one citizen and one demo portal')
    .action(async () => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => print(await seedDemo(db, await argon2idHasher(config.argon2))));
    });

  const clients = cli.command('clients').description('relying portals');
  clients
    .command('add')
    .description('register a portal; prints it as JSON with its secret (shown once)')
    .requiredOption('--name <name>', 'display name shown to citizens')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect, [])
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect, [])
    .option('--backchannel-logout-uri <uri>', 'back-channel logout URI')
    .option('--client-id <id>', 'choose the client_id (default: generated)')
    .addOption(
      new Option('--auth-method <method>', 'token endpoint authentication')
        .choices(['client_secret_basic', 'client_secret_post', 'none'])
        .default('client_secret_basic'),
    )
    .option(
      '--scopes <list>',
      'scopes the portal may receive, space or comma separated (default: profile address email phone offline_access)',
    )
    .option('--client-credentials', 'a back-end service: client_credentials only (no citizen, no redirect URI)')
    .option('--resource <uri>', 'an API (from RESOURCE_SERVERS) it may get access tokens for (repeatable)', collect, [])
    .option(
      '--resource-server <uri>',
      'the API (from RESOURCE_SERVERS) this back-end is: it may introspect and revoke tokens issued for it',
    )
    .option(
      '--allow-personal-id',
      'permit the national_id scope (the 12-digit personal ID); portals entitled by law only',
    )
    .addOption(new Option('--min-level <level>', 'lowest assurance level accepted').choices(['1', '2']).default('1'))
    .addOption(
      new Option('--subject-type <type>', 'sub per sector (pairwise) or one for all (public)')
        .choices(['pairwise', 'public'])
        .default('pairwise'),
    )
    .addOption(
      new Option('--id-token-alg <alg>', 'ID token signature algorithm').choices([...SIGNING_ALGS]).default('ES256'),
    )
    .addOption(
      new Option('--consent <mode>', 'implicit: pre-consented by law (no page, still recorded)')
        .choices(['explicit', 'implicit'])
        .default('explicit'),
    )
    .option('--operator <name>', 'who is registering (default: the OS user)')
    .action(async (o) => {
      await withDatabase(getConfig(), async ({ db }) => {
        const client = await addClient(db, {
          name: o.name,
          redirectUris: o.redirectUri,
          postLogoutRedirectUris: o.postLogoutRedirectUri,
          backchannelLogoutUri: o.backchannelLogoutUri,
          tokenEndpointAuthMethod: o.authMethod,
          clientId: o.clientId,
          scopes: o.scopes
            ? String(o.scopes)
                .split(/[\s,]+/)
                .filter(Boolean)
            : undefined,
          allowPersonalId: !!o.allowPersonalId,
          minLevel: Number(o.minLevel) as 1 | 2,
          subjectType: o.subjectType,
          consent: o.consent,
          idTokenAlg: o.idTokenAlg,
          clientCredentials: !!o.clientCredentials,
          resources: o.resource,
          resourceServer: o.resourceServer,
        });
        await recordEvent(db, {
          actor: { type: 'operator', id: operatorOf(o) },
          action: 'client.registered',
          outcome: 'success',
          clientId: client.client_id,
          details: { name: client.client_name, redirectUris: client.redirect_uris },
        });
        print(client);
      });
    });
  clients
    .command('list')
    .description('list registered portals (no secrets)')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => print(await listClients(db)));
    });

  cli
    .command('config')
    .description('print the configuration reference as a Markdown table (the README table)')
    .action(() => {
      for (const f of describeConfig()) {
        process.stdout.write(
          `| \`${f.name}\` | ${f.default ? `\`${f.default}\`` : '—'} | ${f.doc.replace(/\|/g, '\\|')} |\n`,
        );
      }
    });

  const keys = cli.command('keys').description('signing keys: staged -> active -> retired -> removed, or revoked');
  const keyAudit = (db: Database['db'], o: { operator?: string }, action: string, details: Record<string, unknown>) =>
    recordEvent(db, {
      actor: { type: 'operator', id: operatorOf(o) },
      action: `key.${action}`,
      outcome: 'success',
      details,
    });
  const algOption = () => new Option('--alg <alg>', 'signature algorithm').choices([...SIGNING_ALGS]).default('ES256');
  keys
    .command('list')
    .description('every key with its state and times')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => print(await listKeys(db)));
    });
  keys
    .command('export-public')
    .description('the published JWKS (staged, active and retired public keys)')
    .action(async () => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => print((await loadKeyMaterial(db, loadMasterKey(config))).jwks));
    });
  keys
    .command('generate')
    .description('stage a new key: published now, signs only once activated')
    .addOption(algOption())
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const kid = await generateKey(db, loadMasterKey(config), o.alg, operatorOf(o));
        await keyAudit(db, o, 'generated', { kid, alg: o.alg });
        print({
          kid,
          alg: o.alg,
          state: 'staged',
          activatableFrom: new Date(Date.now() + config.keys.leadSeconds * 1000).toISOString(),
        });
      });
    });
  keys
    .command('activate <kid>')
    .description('make a staged key (published for at least the lead time) the signing key of its algorithm')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const r = await activateKey(db, kid, config.keys);
        await keyAudit(db, o, 'activated', { kid, ...r });
        print({ kid, state: 'active', ...r });
      });
    });
  keys
    .command('retire <kid>')
    .description('retire an active key; a staged key past its lead time takes over')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const r = await retireKey(db, kid, config.keys);
        await keyAudit(db, o, 'retired', { kid, ...r });
        print({ kid, state: 'retired', ...r });
      });
    });
  keys
    .command('revoke <kid>')
    .description(
      'key compromise: remove from JWKS at once; its tokens stop verifying (put -- before a KID that starts with -)',
    )
    .option('--yes', 'do not ask for confirmation')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      if (!o.yes) {
        if (!process.stdin.isTTY) throw new AppError('invalid_input', 'revoke needs --yes when not run on a terminal');
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Revoke ${kid}? Tokens it signed stop verifying at once. Type "revoke": `);
        rl.close();
        if (answer.trim() !== 'revoke') throw new AppError('invalid_input', 'not revoked');
      }
      await withDatabase(config, async ({ db }) => {
        const r = await revokeKey(db, loadMasterKey(config), kid, operatorOf(o));
        await keyAudit(db, o, 'revoked', { kid, ...r });
        print({ kid, state: 'revoked', ...r });
      });
    });
  keys
    .command('rotate')
    .description('stage a new key that activates itself after the lead time (at once when it is 0)')
    .addOption(algOption())
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const r = await rotateKey(db, loadMasterKey(config), o.alg, config.keys, operatorOf(o));
        await keyAudit(db, o, 'rotated', { alg: o.alg, ...r });
        print({ ...r, activatesAt: r.activatesAt.toISOString() });
      });
    });
  keys
    .command('rotate-cookies')
    .description('start a new cookie-key generation: new cookies are signed with it, the previous one still verifies')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      if (config.cookieKeys)
        throw new AppError('invalid_input', 'COOKIE_KEYS is set: rotate by putting a new key first in it');
      await withDatabase(config, async ({ db }) => {
        const generation = await rotateCookieKeys(db, loadMasterKey(config));
        await keyAudit(db, o, 'cookies_rotated', { generation });
        print({ generation });
      });
    });
  keys
    .command('rewrap')
    .description('re-encrypt every private key, TOTP secret and service secret under a new master key')
    .requiredOption('--new-master-key-file <file>', 'file with the new key (32 bytes, base64); created 0600 if missing')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      const from = loadMasterKey(config);
      const to = loadMasterKey({
        ...config,
        masterKey: null,
        masterKeyFile: path.resolve(o.newMasterKeyFile),
        env: 'development',
      });
      if (from.equals(to)) throw new AppError('invalid_input', 'the new master key is the same as the current one');
      await withDatabase(config, async ({ db }) => {
        const counts = await db.transaction().execute(async (trx) => ({
          signingKeys: await rewrapKeys(trx, from, to),
          totpSecrets: await rewrapTotpSecrets(trx, from, to),
          serviceSecrets: await rewrapSecrets(trx, from, to),
        }));
        await keyAudit(db, o, 'rewrapped', counts);
        print({
          ...counts,
          next: `set MASTER_KEY_FILE=${path.resolve(o.newMasterKeyFile)} on every node and restart them`,
        });
      });
    });

  const audit = cli.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description('walk the hash chain; name the first row altered, deleted or reordered')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => {
        const r = await verifyChain(db);
        if (r.ok) process.stdout.write(`audit chain intact: ${r.rows} events, last seq ${r.lastSeq}\n`);
        else {
          const what = {
            altered: 'was altered',
            missing_before: 'follows a deleted row',
            reordered: 'is out of order',
          }[r.problem];
          throw new AppError('conflict', `audit chain broken: row seq ${r.seq} ${what}`);
        }
      });
    });
  audit
    .command('export')
    .description('write events as NDJSON to stdout')
    .option('--since <time>', 'only events at or after this ISO time')
    .addOption(
      new Option('--actor <type>', 'only this actor type').choices([
        'citizen',
        'officer',
        'operator',
        'client',
        'system',
      ]),
    )
    .action(async (o) => {
      const since = o.since === undefined ? undefined : parseTime('--since', o.since);
      await withDatabase(getConfig(), async ({ db }) => {
        await exportEvents(db, { since, actorType: o.actor }, async (line) => {
          if (!process.stdout.write(line)) await once(process.stdout, 'drain');
        });
      });
    });
  audit
    .command('archive')
    .description('move events older than the retention period (or --before) to an NDJSON file, keeping a checkpoint')
    .requiredOption('--out <file>', 'archive file to create (must not exist)')
    .option('--before <time>', 'archive events before this ISO time (default: now - AUDIT_RETENTION_DAYS)')
    .option('--operator <name>', 'who is archiving (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      const before =
        o.before === undefined
          ? new Date(Date.now() - config.auditRetentionDays * 86400_000)
          : parseTime('--before', o.before);
      await withDatabase(config, async ({ db }) => {
        const r = await archiveEvents(db, before, o.out);
        await recordEvent(db, {
          actor: { type: 'operator', id: operatorOf(o) },
          action: 'audit.archived',
          outcome: 'success',
          details: { ...r, before: before.toISOString() },
        });
        print(r);
      });
    });

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
        const out = await db.transaction().execute(async (trx) => {
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
          await recordEvent(trx, {
            actor: { type: 'officer', id: officer },
            action: 'enrollment',
            outcome: 'success',
            subject: r.accountId,
            details: { level: 1, channel: 'in_person' },
          });
          if (password) return { account_id: r.accountId };
          const resident = await findResident(trx, { pin: o.personalId.replace(/[\s.-]/g, '') });
          const issued = await codeBook(trx, codeKey).issueOfficerCode({
            residentId: resident!.id,
            accountId: r.accountId,
            officer,
          });
          return {
            account_id: r.accountId,
            set_password_code: issued.code,
            expires_at: issued.expiresAt.toISOString(),
            where: '/recover/officer',
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
      const officer = String(o.officer).slice(0, 100);
      await withDatabase(config, async ({ db }) => {
        const codeKey = deriveCodeKey(await loadSecretRoot(db, loadMasterKey(config)));
        const accountId = await accountIdForPin(db, o.personalId);
        const resident = await findResident(db, { pin: o.personalId });
        const out = await db.transaction().execute(async (trx) => {
          const issued = await codeBook(trx, codeKey).issueOfficerCode({
            residentId: resident!.id,
            accountId,
            officer,
          });
          await recordEvent(trx, {
            actor: { type: 'officer', id: officer },
            action: 'account.reset_password',
            outcome: 'success',
            subject: accountId,
            details: { expiresAt: issued.expiresAt.toISOString() },
          });
          return { reset_code: issued.code, expires_at: issued.expiresAt.toISOString(), where: '/recover/officer' };
        });
        print(out);
      });
    });
  accounts
    .command('verify-in-person')
    .description('after checking the citizen in person: print a one-time activation code (15 minutes)')
    .requiredOption('--personal-id <pin>', '12-digit personal identification number')
    .requiredOption('--officer <id>', 'the verifying officer')
    .action(async (o) => {
      await withDatabase(getConfig(), async ({ db }) => {
        if (!/^\d{12}$/.test(o.personalId)) throw new AppError('invalid_input', '--personal-id must be 12 digits');
        const r = await issueActivationCode(db, o.personalId, String(o.officer).slice(0, 100));
        await recordEvent(db, {
          actor: { type: 'officer', id: o.officer },
          action: 'account.verified_in_person',
          outcome: 'success',
          subject: r.accountId,
        });
        print({ activation_code: r.code, expires_at: r.expiresAt.toISOString() });
      });
    });
  for (const [name, description, run] of [
    ['show', 'show an account (no secrets)', async (db: Database['db'], pin: string) => showAccount(db, pin)],
    [
      'suspend',
      'suspend an account and end its sessions',
      async (db: Database['db'], pin: string) => ({
        accountId: await suspendAccount(db, pin, (ids) => requestSessionTermination(db, ids, 'suspended')),
        status: 'suspended',
      }),
    ],
    [
      'reactivate',
      'reactivate a suspended account',
      async (db: Database['db'], pin: string) => ({ accountId: await reactivateAccount(db, pin), status: 'active' }),
    ],
    [
      'reset-totp',
      'remove TOTP and recovery codes (back to level 1)',
      async (db: Database['db'], pin: string) => {
        // A lost or stolen phone: level 2 ends now, and so does every session that reached it.
        const accountId = await resetTotp(db, pin);
        await requestSessionTermination(db, [accountId], 'totp_reset');
        return { accountId, level: 1 };
      },
    ],
  ] as const) {
    accounts
      .command(name)
      .description(description)
      .requiredOption('--personal-id <pin>', '12-digit personal identification number')
      .option('--operator <name>', 'officer id (default: the OS user)')
      .action(async (o) => {
        await withDatabase(getConfig(), async ({ db }) => {
          const result = await run(db, o.personalId);
          if (name !== 'show') {
            await recordEvent(db, {
              actor: { type: 'officer', id: operatorOf(o) },
              action: `account.${name}`,
              outcome: 'success',
              subject: result.accountId,
            });
          }
          print(result);
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
      await withDatabase(config, async ({ db, pool }) => {
        const key = (await pseudonymOf(config, db))(o.personalId);
        await createLimiter(pool, 'login', config.loginLimits).unlock(key);
        await recordEvent(db, {
          actor: { type: 'officer', id: operatorOf(o) },
          action: 'account.unlocked',
          outcome: 'success',
          subject: key,
        });
        process.stdout.write('unlocked\n');
      });
    });

  registryCommands(cli, getConfig, withDatabase);

  return cli;
}

const PASSWORD_TEXT = {
  blank: 'must not be only spaces',
  too_short: 'at least 8 characters, not counting spaces at either end',
  too_long: 'at most 128 characters',
  common: 'too common',
  personal: 'must not be the personal ID or the birth date',
} as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (chunks.reduce((n, b) => n + b.length, 0) > 4096) throw new AppError('invalid_input', 'password input too long');
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseTime(flag: string, value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new AppError('invalid_input', `${flag} must be an ISO date or time, e.g. 2026-01-31 or 2026-01-31T08:00:00Z`);
  }
  return d;
}

/** Runs the CLI and maps failures to one line on stderr and an exit code. `start` keeps the process running. */
export async function run(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
    if (argv[2] !== 'start') process.exit(0);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof ConfigError) {
      process.stderr.write(`dinhdanh: invalid configuration\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
    } else if (err instanceof AppError && err.expose) {
      process.stderr.write(`dinhdanh: ${err.message}\n`);
    } else {
      process.stderr.write(`dinhdanh: ${(err as Error)?.message ?? String(err)}\n`);
    }
    process.exit(1);
  }
}

if (import.meta.main) await run(process.argv);
