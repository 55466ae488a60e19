/**
 * `dinhdanh` command line: start, migrate, seed, config, and the command groups (clients, keys, audit, sms,
 * accounts, registry) from their own files. Every command validates configuration first and prints one clear line
 * per problem; errors never print a stack trace. Every operator act is audited (see audited.ts).
 */
import { Command, CommanderError } from 'commander';
import { type Config, ConfigError, describeConfig, loadConfig } from '../config/index.ts';
import { AppError } from '../errors.ts';
import type { GetConfig } from './shared.ts';

/**
 * The command groups, each in its own file and imported only when the command line names it: a CLI process pays
 * for the modules of its own command, not for the service's (`start`) nor the other groups'.
 */
const GROUPS: Record<string, () => Promise<(cli: Command, getConfig: GetConfig) => void>> = {
  clients: async () => (await import('./clients.ts')).clientsCommands,
  keys: async () => (await import('./keys.ts')).keysCommands,
  audit: async () => (await import('./audit.ts')).auditCommands,
  accounts: async () => (await import('./accounts.ts')).accountsCommands,
  registry: async () => (await import('./registry.ts')).registryCommands,
  staff: async () => (await import('./staff.ts')).staffCommands,
};
/** A command registered by a group file of another name. */
const GROUP_OF: Record<string, string> = { sms: 'accounts' };
/** The commands defined in this file. */
const OWN = ['start', 'migrate', 'seed', 'config'];

/**
 * Builds the program; `config` is loaded lazily so `--help` works with a broken environment. With `argv`, only the
 * command group it names is loaded (all of them for help, an unknown command or none, so those print as before).
 */
export async function program(getConfig: () => Config = () => loadConfig(), argv?: string[]): Promise<Command> {
  const cli = new Command('dinhdanh').description('National e-identity OpenID Connect provider').exitOverride();
  const named = argv?.[2] === undefined ? undefined : (GROUP_OF[argv[2]] ?? argv[2]);
  const known = named !== undefined && (OWN.includes(named) || Object.hasOwn(GROUPS, named));
  const addGroup = async (name: string) => {
    if (!known || named === name) (await GROUPS[name]!())(cli, getConfig);
  };

  cli
    .command('start')
    .description('run the service (embedded PostgreSQL unless DATABASE_URL is set)')
    .action(async () => {
      const config = getConfig();
      const [{ createLogger, startService }, { DEMO }] = await Promise.all([
        import('../main.ts'),
        import('../seed/demo.ts'),
      ]);
      const log = createLogger(config);
      // A stray rejected promise is a bug to log, not a reason to drop every citizen's request on this node.
      process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
      const service = await startService(config, { log });
      const lines = [
        `dinhdanh is listening on ${service.url}`,
        `  discovery: ${service.url}/.well-known/openid-configuration`,
        `  database:  ${config.databaseUrl ? 'external PostgreSQL (DATABASE_URL)' : `embedded PostgreSQL in ${config.dataDir}`}`,
        `  staff console: ${service.url}/admin (a level-2 account with a role: \`dinhdanh staff grant --personal-id N --role admin\`)`,
      ];
      // The demo login exists only where demo data was seeded: now, or earlier into the embedded database.
      if (service.seeded || (!config.databaseUrl && config.demoSeed !== 'never')) {
        lines.push(
          '  demo citizen:  personal ID 001090012345, password demo-password-2026',
          // Registered, not running: no portal listens at its redirect URI (`npm run demo` runs the example portals).
          `  demo portal:   client_id ${DEMO.clientId} registered (public, PKCE S256, redirect_uri ${DEMO.redirectUri});`,
          '                 no portal runs there: `npm run demo` starts the example portals',
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
    .option('--operator <name>', 'who is migrating (default: the OS user)')
    .action(async (o) => {
      const [{ migrateToLatest, openDatabase }, { audited }, { operatorOf }] = await Promise.all([
        import('../db/index.ts'),
        import('../audit/audited.ts'),
        import('./shared.ts'),
      ]);
      const database = await openDatabase(getConfig());
      try {
        // Not one transaction: the migrator commits each migration itself (and a migration may alter the audit
        // table). The event follows at once, with what was applied, also when nothing was.
        const applied = await migrateToLatest(database.db);
        await audited(database.db, { type: 'operator', id: operatorOf(o) }, 'database.migrated', async () => ({
          result: undefined,
          details: { applied },
        }));
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await database.close();
      }
    });

  cli
    .command('seed')
    .description('load demo data')
    .requiredOption('--demo', 'synthetic residents, one citizen and one demo portal')
    .option('--operator <name>', 'who is seeding (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      const [{ argon2idHasher }, { seedDemo }, { audited }, { operatorOf, print, withDatabase }] = await Promise.all([
        import('../credentials/index.ts'),
        import('../seed/demo.ts'),
        import('../audit/audited.ts'),
        import('./shared.ts'),
      ]);
      await withDatabase(config, async ({ db }) => {
        const hasher = await argon2idHasher(config.argon2);
        const seeded = await audited(db, { type: 'operator', id: operatorOf(o) }, 'demo.seeded', async (trx) => {
          const created = await seedDemo(trx, hasher);
          return { result: created, details: created };
        });
        print(seeded);
      });
    });

  await addGroup('clients');

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

  for (const name of ['keys', 'audit', 'accounts', 'registry', 'staff']) await addGroup(name);

  return cli;
}

/** Runs the CLI and maps failures to one line on stderr and an exit code. `start` keeps the process running. */
export async function run(argv: string[]): Promise<void> {
  try {
    await (await program(undefined, argv)).parseAsync(argv);
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
