/**
 * `npm test`'s global set-up (node --test-global-setup), run once before the test files, which run concurrently:
 * - one embedded PostgreSQL for the whole run, which the files join with a database of their own (helpers/db.ts),
 *   stopped after the last file (with TEST_DATABASE_URL the files use that server and nothing is started);
 * - the migrated template those databases are copied from, made here once before any file asks for it;
 * - one Chromium, to which the browser test files connect instead of each starting its own (helpers/browser.ts).
 */
import path from 'node:path';
import type { BrowserServer } from 'playwright-core';
import { type EmbeddedServer, startEmbedded } from '../../src/db/embedded.ts';
import { CHROMIUM_ENDPOINT, hasChromium, launchChromiumServer } from './browser.ts';
import { ensureTemplate } from './db.ts';

let server: EmbeddedServer | undefined;
let browser: BrowserServer | undefined;

async function startDatabase(): Promise<void> {
  const external = process.env.TEST_DATABASE_URL;
  if (!external) {
    // Several files at once, each with nodes, pools, probes and LISTEN connections: more than the default 100.
    server = await startEmbedded(path.resolve(import.meta.dirname, '../../.tmp/test-pg'), 0, () => {}, {
      max_connections: '400',
    });
  }
  await ensureTemplate(external ?? server!.url);
}

async function startBrowser(): Promise<void> {
  // Without Chromium the browser files fail on their own, each saying how to install it.
  if (!hasChromium()) return;
  browser = await launchChromiumServer();
  process.env[CHROMIUM_ENDPOINT] = browser.wsEndpoint();
}

export async function globalSetup(): Promise<void> {
  await Promise.all([startDatabase(), startBrowser()]);
}

export async function globalTeardown(): Promise<void> {
  await Promise.all([server?.stop(), browser?.close()]);
}
