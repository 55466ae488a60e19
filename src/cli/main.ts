/**
 * `dinhdanh` command line: start, migrate, seed, clients. Every command validates configuration first and prints
 * one clear line per problem; errors never print a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { addClient, listClients } from '../clients/index.ts';
import { type Config, ConfigError, loadConfig } from '../config/index.ts';
import { argon2idHasher } from '../credentials/index.ts';
import { type Database, migrateToLatest, openDatabase } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { startService } from '../main.ts';
import { DEMO, seedDemo } from '../seed/demo.ts';

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
      const service = await startService(config);
      const lines = [
        `dinhdanh is listening on ${service.url}`,
        `  discovery: ${service.url}/.well-known/openid-configuration`,
        `  database:  ${config.databaseUrl ? 'external PostgreSQL (DATABASE_URL)' : `embedded PostgreSQL in ${config.dataDir}`}`,
      ];
      if (service.seeded || config.demoSeed !== 'never') {
        lines.push(
          '  demo citizen:  personal ID 001090012345, password demo-password-2026',
          `  demo portal:   client_id ${DEMO.clientId} (public, PKCE S256), redirect_uri ${DEMO.redirectUri}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      const stop = async () => {
        await service.close();
        process.exit(0);
      };
      process.once('SIGINT', stop).once('SIGTERM', stop);
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
    .action(async (o) => {
      await withDatabase(getConfig(), async ({ db }) =>
        print(
          await addClient(db, {
            name: o.name,
            redirectUris: o.redirectUri,
            postLogoutRedirectUris: o.postLogoutRedirectUri,
            backchannelLogoutUri: o.backchannelLogoutUri,
            tokenEndpointAuthMethod: o.authMethod,
            clientId: o.clientId,
          }),
        ),
      );
    });
  clients
    .command('list')
    .description('list registered portals (no secrets)')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => print(await listClients(db)));
    });

  return cli;
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
