/**
 * A fresh PostgreSQL database per test file, with the real migrations.
 * TEST_DATABASE_URL set: databases are created on that server (CI: the machine's PostgreSQL).
 * Unset: on the embedded server in .tmp/test-pg (started, or joined when another file already runs it).
 *
 * The migrations run once per server, into a template database, and each file's database is a copy of it
 * (`create database ... template`): a copy costs a few milliseconds of PostgreSQL's time, fourteen migrations about a
 * second and a half. Files that test the migrations themselves ask for `migrate: false` and get an empty database.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../../src/db/embedded.ts';
import { connect, migrateToLatest } from '../../src/db/index.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** A database made for one test file; `drop()` removes it and stops what was started for it. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** The server the test databases are made on: TEST_DATABASE_URL, or the embedded one (started or joined). */
export async function testServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const external = process.env.TEST_DATABASE_URL;
  return external ? { url: external, stop: async () => {} } : startEmbedded(path.join(root, '.tmp/test-pg'), 0);
}

const TEMPLATE_PREFIX = 'dd_tpl_';
const day = (d: Date) => d.toISOString().slice(0, 10).replaceAll('-', '');

/**
 * The template's name: a hash of the migration set (every file's name and text, and the migrator) and the UTC day,
 * because one migration creates the audit partitions of the months around the day it runs. A changed, added or
 * removed migration, or a new day, names another template, so a stale one is never copied.
 */
export function templateName(now = new Date()): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(path.join(root, 'src/db/migrate.ts')));
  const folder = path.join(root, 'migrations');
  for (const file of readdirSync(folder).sort()) {
    hash.update(`\0${file}\0`);
    hash.update(readFileSync(path.join(folder, file)));
  }
  return `${TEMPLATE_PREFIX}${hash.digest('hex').slice(0, 16)}_${day(now)}`;
}

const withUrlDatabase = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

async function asAdmin<T>(serverUrl: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

/**
 * Makes sure the migrated template exists on the server (npm test's global set-up calls this once before the files
 * start; a file run on its own makes it when missing). It is built under a name of its own, closed to connections
 * (a database is copied only while nobody is connected to it) and then renamed: a file never sees a half-migrated
 * template, and of two processes building it at once the second drops its copy and uses the first's. Templates of
 * days before yesterday are dropped.
 */
export async function ensureTemplate(serverUrl: string): Promise<string> {
  const name = templateName();
  const exists = (c: pg.Client, n: string) =>
    c.query('select 1 from pg_database where datname = $1', [n]).then((r) => r.rowCount === 1);
  if (await asAdmin(serverUrl, (c) => exists(c, name))) return name;

  const building = `${name}_b${randomBytes(4).toString('hex')}`;
  await asAdmin(serverUrl, (c) => c.query(`create database ${building}`));
  const db = connect(withUrlDatabase(serverUrl, building), 1);
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
  await asAdmin(serverUrl, async (c) => {
    await c.query(`alter database ${building} with allow_connections false`);
    try {
      await c.query(`alter database ${building} rename to ${name}`);
    } catch (err) {
      // 42P04 duplicate_database: another process published the same template first.
      if ((err as { code?: string }).code !== '42P04') throw err;
      await c.query(`drop database if exists ${building}`);
    }
    const yesterday = day(new Date(Date.now() - 86_400_000));
    const { rows } = await c.query<{ datname: string }>('select datname from pg_database where datname like $1', [
      `${TEMPLATE_PREFIX}%`,
    ]);
    for (const { datname } of rows) {
      const built = /_(\d{8})(_b[0-9a-f]+)?$/.exec(datname)?.[1];
      if (built && built < yesterday) await c.query(`drop database if exists ${datname}`).catch(() => {});
    }
  });
  return name;
}

export async function freshDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const server = await testServer();
  const name = `dd_test_${randomBytes(6).toString('hex')}`;
  const template = opts.migrate !== false ? await ensureTemplate(server.url) : undefined;
  await asAdmin(server.url, (c) => c.query(`create database ${name}${template ? ` template ${template}` : ''}`));
  return {
    url: withUrlDatabase(server.url, name),
    async drop() {
      await asAdmin(server.url, (c) => c.query(`drop database if exists ${name} with (force)`));
      await server.stop();
    },
  };
}
