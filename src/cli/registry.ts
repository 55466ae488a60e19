/**
 * `dinhdanh registry import FILE` and `dinhdanh registry generate`: load an export of the national population
 * database into `residents` (counts as JSON on stdout, a progress bar on stderr when it is a terminal), or write
 * synthetic residents in the same format. A resident who leaves the active population has their account disabled and
 * its sessions and tokens deleted; each import is an audit event.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { disableAccountsOfInactiveResidents, disableAccountsOfResidents } from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import { createPool, type Database } from '../db/index.ts';
import { AppError } from '../errors.ts';
import {
  formatRecord,
  generateResidents,
  type ImportCounts,
  importResidents,
  REGISTRY_CSV_HEADER,
  type RegistryFormat,
  recordOf,
} from '../registry/index.ts';
import { type GetConfig, operatorOf, withDatabase } from './shared.ts';

const FORMATS: Record<string, RegistryFormat> = { '.csv': 'csv', '.ndjson': 'ndjson', '.jsonl': 'ndjson' };

function formatOf(file: string, given: RegistryFormat | undefined): RegistryFormat {
  const format = given ?? FORMATS[path.extname(file).toLowerCase()];
  if (!format) throw new AppError('invalid_input', `cannot tell the format of ${file}: use --format csv or ndjson`);
  return format;
}

function intOption(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new AppError('invalid_input', `${flag} must be a whole number between ${min} and ${max}`);
  return n;
}

/** Why a file cannot be used, in a few words. */
function fileProblem(err: unknown): string {
  const code = (err as { code?: string }).code;
  return (
    { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory', EEXIST: 'already exists' }[
      code ?? ''
    ] ??
    (code || 'cannot open')
  );
}

/** Checks that `file` is a readable regular file; returns its size in bytes. */
async function readableFile(file: string): Promise<number> {
  try {
    const stat = await fs.stat(file);
    if (stat.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    await fs.access(file, fs.constants.R_OK);
    return stat.size;
  } catch (err) {
    throw new AppError('invalid_input', `cannot read ${file}: ${fileProblem(err)}`);
  }
}

/**
 * Opens `file` for writing personal data: created 0600, never replacing an existing file unless `force` (then it is
 * truncated and made 0600 too); fails with one line when it cannot be.
 */
async function writableFile(file: string, force = false): Promise<Writable> {
  const out = createWriteStream(file, { flags: force ? 'w' : 'wx', mode: 0o600 });
  try {
    await once(out, 'open');
    if (force) await fs.chmod(file, 0o600);
  } catch (err) {
    out.destroy();
    const exists = (err as { code?: string }).code === 'EEXIST';
    throw new AppError(
      'invalid_input',
      `cannot write ${file}: ${exists ? 'it exists (--force replaces it)' : fileProblem(err)}`,
    );
  }
  return out;
}

/** Ends `out` and waits until its data is written (or it failed). */
async function closeFile(out: Writable | undefined): Promise<void> {
  if (!out || out.destroyed || out.writableFinished) return;
  out.end();
  await finished(out);
}

/** Adds `registry import` and `registry generate` to the program. */
export function registryCommands(cli: Command, getConfig: GetConfig): void {
  const registry = cli.command('registry').description('the resident registry (national population database)');

  registry
    .command('import')
    .description('import a registry export (one record per line); prints the counts as JSON')
    .argument('<file>', 'CSV (with header) or NDJSON file')
    .addOption(new Option('--format <format>', 'file format (default: from the extension)').choices(['csv', 'ndjson']))
    .option(
      '--rejects <file>',
      'write rejected lines to this new file (0600): line number, reason, original line (tab-separated)',
    )
    .option('--force', 'replace the --rejects file if it exists')
    .option('--batch-size <rows>', 'rows per transaction', '2000')
    .option('--operator <name>', 'who is importing (default: the OS user)')
    .action(async (file: string, o) => {
      const format = formatOf(file, o.format);
      const batchSize = intOption('--batch-size', o.batchSize, 1, 100_000);
      const size = await readableFile(file);
      const config = getConfig();
      const rejects = o.rejects ? await writableFile(o.rejects, !!o.force) : undefined;
      try {
        const counts = await withDatabase(config, (database) =>
          importWithProgress(database, file, size, { format, batchSize, rejects, operator: operatorOf(o) }),
        );
        await closeFile(rejects);
        process.stdout.write(`${JSON.stringify(counts, null, 2)}\n`);
      } finally {
        await closeFile(rejects).catch(() => {});
      }
    });

  registry
    .command('generate')
    .description('write synthetic residents (deterministic for a seed) in the import format')
    .requiredOption('--count <n>', 'how many residents')
    .option('--seed <n>', 'seed of the generator (same seed, same residents)', '1')
    .addOption(
      new Option('--format <format>', 'output format (default: from --out, else csv)').choices(['csv', 'ndjson']),
    )
    .option('--out <file>', 'write to this new file (0600) instead of stdout')
    .option('--force', 'replace the --out file if it exists')
    .action(async (o) => {
      const count = intOption('--count', o.count, 0, 100_000_000);
      const seed = intOption('--seed', o.seed, 0, 0xffffffff);
      const format: RegistryFormat =
        o.format ?? (o.out ? FORMATS[path.extname(o.out).toLowerCase()] : undefined) ?? 'csv';
      const out = o.out ? await writableFile(o.out, !!o.force) : process.stdout;
      await writeResidents(out, count, seed, format);
      if (o.out) await closeFile(out);
    });
}

/**
 * Imports `file`, disabling the accounts of residents who left the active population, and audits the import.
 *
 * Not one transaction with its events (unlike the other operator acts, see audited.ts): the import commits in
 * batches over its own connections, so an interrupted import keeps what it committed, and the accounts of
 * residents who left are disabled in transactions of their own (src/accounts). Each event follows its step at
 * once: `account.disabled` after each disabling, `registry.imported` (success, or failure with what was done) last.
 */
async function importWithProgress(
  { db, url }: Database,
  file: string,
  size: number,
  o: { format: RegistryFormat; batchSize: number; rejects?: Writable; operator: string },
): Promise<ImportCounts & { disabledAccounts: number }> {
  const actor = { type: 'operator' as const, id: o.operator };
  let disabledAccounts = 0;
  const disable = async (accountIds: string[]) => {
    disabledAccounts += accountIds.length;
    for (const id of accountIds)
      await recordEvent(db, {
        actor,
        action: 'account.disabled',
        outcome: 'success',
        subject: id,
        reason: 'resident_inactive',
      });
  };
  const bar = process.stderr.isTTY
    ? new SingleBar({
        stream: process.stderr,
        format:
          'importing [{bar}] {percentage}% | {lines} lines | {inserted} new, {updated} updated, {rejected} rejected',
        hideCursor: true,
      })
    : undefined;
  bar?.start(size, 0, { lines: 0, inserted: 0, updated: 0, rejected: 0 });
  // Its own connections (one claims numbers, two write), whatever DB_POOL_SIZE is: the import holds them while `db`
  // serves the callbacks.
  const pool = createPool(url, 3);
  try {
    const counts = await importResidents(pool, createReadStream(file, { highWaterMark: 1 << 20 }), {
      format: o.format,
      batchSize: o.batchSize,
      rejects: o.rejects,
      onProgress: (p) => bar?.update(p.bytes, p),
      onInactive: async (residentIds) => disable(await disableAccountsOfResidents(db, residentIds)),
    });
    // Catches deactivations whose follow-up an earlier, interrupted import never ran.
    await disable(await disableAccountsOfInactiveResidents(db));
    bar?.update(size, counts);
    bar?.stop();
    const result = { ...counts, disabledAccounts };
    await recordEvent(db, {
      actor,
      action: 'registry.imported',
      outcome: 'success',
      details: { file: path.basename(file), format: o.format, ...result },
    });
    return result;
  } catch (err) {
    bar?.stop();
    await recordEvent(db, {
      actor,
      action: 'registry.imported',
      outcome: 'failure',
      reason: err instanceof AppError ? err.message : ((err as { code?: string }).code ?? 'error'),
      details: { file: path.basename(file), format: o.format, disabledAccounts },
    }).catch(() => {});
    throw err;
  } finally {
    await pool.end();
  }
}

/** Resolves when `out` can take more, or is closed (an error is reported by the caller's 'error' listener). */
function drainedOrClosed(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done).off('close', done);
      resolve();
    };
    out.on('drain', done).on('close', done);
  });
}

/** Writes `count` generated residents to `out`, minding backpressure; stops quietly if a pipe reader goes away. */
async function writeResidents(out: Writable, count: number, seed: number, format: RegistryFormat): Promise<void> {
  let failure: { code?: string } | undefined;
  const onError = (err: { code?: string }) => {
    failure = err;
  };
  out.on('error', onError);
  /** Writes, waits while the reader catches up; false when output must stop. */
  const put = async (text: string) => {
    if (!out.write(text)) await drainedOrClosed(out);
    if (failure?.code === 'EPIPE') return false; // `| head`: the reader has what it wanted
    if (failure) throw new AppError('invalid_input', `cannot write the output: ${fileProblem(failure)}`);
    return true;
  };
  try {
    let chunk = format === 'csv' ? REGISTRY_CSV_HEADER : '';
    let n = 0;
    for (const r of generateResidents(count, seed)) {
      chunk += formatRecord(recordOf(r), format);
      if (++n % 1000 === 0) {
        if (!(await put(chunk))) return;
        chunk = '';
      }
    }
    if (chunk) await put(chunk);
  } finally {
    if (!failure) out.off('error', onError); // after a failure, later writes' errors are expected: keep swallowing
  }
}
