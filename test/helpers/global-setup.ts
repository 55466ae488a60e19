/**
 * `npm test`'s global set-up (node --test-global-setup): one embedded PostgreSQL for the whole run, started before
 * the test files, which run concurrently and each join it with a database of their own (helpers/db.ts), and stopped
 * after the last. With TEST_DATABASE_URL the files use that server instead and nothing is started here.
 */
import path from 'node:path';
import { type EmbeddedServer, startEmbedded } from '../../src/db/embedded.ts';

let server: EmbeddedServer | undefined;

export async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) return;
  // Several files at once, each with nodes, pools, probes and LISTEN connections: more than the default 100.
  server = await startEmbedded(path.resolve(import.meta.dirname, '../../.tmp/test-pg'), 0, () => {}, {
    max_connections: '400',
  });
}

export async function globalTeardown(): Promise<void> {
  await server?.stop();
}
