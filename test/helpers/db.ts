/**
 * A fresh PostgreSQL database per test file, with the real migrations.
 * TEST_DATABASE_URL set: databases are created on that server (CI: the machine's PostgreSQL).
 * Unset: on the embedded server in .tmp/test-pg (started, or joined when another file already runs it).
 */
import { randomBytes } from 'node:crypto';
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

export async function freshDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const external = process.env.TEST_DATABASE_URL;
  const server = external
    ? { url: external, stop: async () => {} }
    : await startEmbedded(path.join(root, '.tmp/test-pg'), 0);
  const name = `dd_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(server.url);
  u.pathname = `/${name}`;
  const url = u.toString();
  if (opts.migrate !== false) {
    const db = connect(url, 1);
    await migrateToLatest(db);
    await db.destroy();
  }
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
      await server.stop();
    },
  };
}
