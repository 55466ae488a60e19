/**
 * Registry import throughput: `node bench/registry-import.ts [--count 1000000] [--batch-size 2000] [--seed 1]`.
 *
 * Generates N residents to a temporary CSV file, imports them into a fresh database, imports the same file again
 * (everything unchanged), and measures a baseline in the same run: a plain COPY of the same file into an unindexed
 * table with no checks. Server: DATABASE_URL or TEST_DATABASE_URL when set, else the embedded PostgreSQL in
 * .tmp/bench-pg. The database is dropped at the end. Connection URLs are never printed.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { startEmbedded } from '../src/db/embedded.ts';
import { connect, createPool, migrateToLatest } from '../src/db/index.ts';
import {
  formatRecord,
  generateResidents,
  importResidents,
  REGISTRY_CSV_HEADER,
  recordOf,
} from '../src/registry/index.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    'batch-size': { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
  },
});
const count = Number(values.count);
const batchSize = Number(values['batch-size']);
const seed = Number(values.seed);
if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');

const root = path.resolve(import.meta.dirname, '..');
const external = process.env.DATABASE_URL || process.env.TEST_DATABASE_URL;
const server = external
  ? { url: external, stop: async () => {} }
  : await startEmbedded(path.join(root, '.tmp/bench-pg'), 0);
const name = `dd_bench_${randomBytes(6).toString('hex')}`;
const admin = new pg.Client({ connectionString: server.url });
await admin.connect();
await admin.query(`create database ${name}`);
const url = new URL(server.url);
url.pathname = `/${name}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-bench-'));
const file = path.join(tmp, 'residents.csv');

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const rate = (n: number, s: number) => Math.round(n / s);
const log = (line: string) => process.stderr.write(`${line}\n`);

try {
  const { rows: version } = await admin.query<{ server_version: string }>('show server_version');
  log(
    `PostgreSQL ${version[0]?.server_version} (${external ? 'external server' : 'embedded'}), ${os.cpus().length} CPUs, ` +
      `load average ${os.loadavg()[0]!.toFixed(2)} (other work on this machine skews the figures)`,
  );
  const db = connect(url.toString(), 1);
  await migrateToLatest(db);
  await db.destroy();
  const pool = createPool(url.toString(), 3);

  let t0 = performance.now();
  const out = createWriteStream(file);
  out.write(REGISTRY_CSV_HEADER);
  let chunk = '';
  let n = 0;
  for (const r of generateResidents(count, seed)) {
    chunk += formatRecord(recordOf(r), 'csv');
    if (++n % 1000 === 0) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  const generate = seconds(t0);
  const size = statSync(file).size;
  log(`generate: ${count} rows, ${(size / 1e6).toFixed(1)} MB in ${generate.toFixed(2)} s`);

  t0 = performance.now();
  const first = await importResidents(pool, createReadStream(file, { highWaterMark: 1 << 20 }), {
    format: 'csv',
    batchSize,
  });
  const importFirst = seconds(t0);
  log(`import:   ${JSON.stringify(first)} in ${importFirst.toFixed(2)} s`);
  if (first.inserted !== count) throw new Error(`expected ${count} inserted`);

  t0 = performance.now();
  const second = await importResidents(pool, createReadStream(file, { highWaterMark: 1 << 20 }), {
    format: 'csv',
    batchSize,
  });
  const importAgain = seconds(t0);
  log(`again:    ${JSON.stringify(second)} in ${importAgain.toFixed(2)} s`);
  await pool.end();

  // Baseline: the same bytes, COPY'd as text into an unindexed table, no checks, no upsert.
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  await c.query(
    `create table copy_baseline (${REGISTRY_CSV_HEADER.trim()
      .split(',')
      .map((col) => `${col} text`)})`,
  );
  t0 = performance.now();
  await pipeline(
    createReadStream(file, { highWaterMark: 1 << 20 }),
    c.query(copyFrom('copy copy_baseline from stdin with (format csv, header true)')),
  );
  const copy = seconds(t0);
  await c.end();

  const result = {
    rows: count,
    batchSize,
    generateRowsPerSecond: rate(count, generate),
    importRowsPerSecond: rate(count, importFirst),
    reimportRowsPerSecond: rate(count, importAgain),
    copyBaselineRowsPerSecond: rate(count, copy),
    importToCopyRatio: Number((copy / importFirst).toFixed(3)),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
  await server.stop();
}
