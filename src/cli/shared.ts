/** What every command group shares: opening the database, who is acting, printing, reading input. */
import os from 'node:os';
import type { ActDeps } from '../admin/acts.ts';
import { recordEvent } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import { type Database, migrateToLatest, openDatabase } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { loadMasterKey, loadSecretRoot, pinPseudonymizer } from '../keys/index.ts';

/** The configuration, loaded when a command runs (so `--help` works with a broken environment). */
export type GetConfig = () => Config;

/** How a command opens the database (migrated, closed afterwards). */
export type WithDatabase = <T>(config: Config, fn: (d: Database) => Promise<T>) => Promise<T>;

/** The person running a command: `--operator`, else the OS user. */
export function operatorOf(o: { operator?: string }): string {
  return (o.operator ?? os.userInfo().username).slice(0, 100);
}

/** The personal-ID pseudonym function of this installation (as the service computes it). */
export async function pseudonymOf(config: Config, db: Database['db']): Promise<(pin: string) => string> {
  return pinPseudonymizer(await loadSecretRoot(db, loadMasterKey(config)));
}

/** Opens the configured database (joining or starting the embedded server), runs `fn`, closes. */
export const withDatabase: WithDatabase = async (config, fn) => {
  const database = await openDatabase(config);
  try {
    // Every command brings the schema up to date first; when that applied anything, it is on the record too.
    const applied = await migrateToLatest(database.db);
    if (applied.length)
      await recordEvent(database.db, {
        actor: { type: 'system' },
        action: 'database.migrated',
        outcome: 'success',
        details: { applied, by: 'cli' },
      });
    return await fn(database);
  } finally {
    await database.close();
  }
};

/** Prints a value as indented JSON on stdout. */
export const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

/** Commander reducer for a repeatable option. */
export const collect = (value: string, previous: string[]) => [...previous, value];

/** Standard input as text (at most 4 KiB: a password, not a file). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (chunks.reduce((n, b) => n + b.length, 0) > 4096) throw new AppError('invalid_input', 'password input too long');
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An ISO date or time option, refused with one line when it is not one. */
export function parseTime(flag: string, value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new AppError('invalid_input', `${flag} must be an ISO date or time, e.g. 2026-01-31 or 2026-01-31T08:00:00Z`);
  }
  return d;
}

/** What the staff acts (admin/acts.ts) need, from the command line's configuration. */
export const actDeps = (config: Config, db: Database['db']): ActDeps => ({
  db,
  get master() {
    return loadMasterKey(config);
  },
  keys: config.keys,
  production: config.env === 'production',
});
