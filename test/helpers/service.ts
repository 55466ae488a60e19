/** Starts a real dinhdanh node on loopback (port 0) over a given database, with a cheap argon2 cost. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { type Service, startService } from '../../src/main.ts';

/** Environment for a test node; `extra` overrides. */
export function testEnv(databaseUrl: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-test-'));
  return {
    PORT: '0',
    LOG_LEVEL: 'silent',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1',
    DEMO_SEED: 'always',
    // Tests stop nodes at once unless a test is about the drain.
    SHUTDOWN_GRACE_SECONDS: '0',
    DATA_DIR: path.join(tmp, 'data'),
    MASTER_KEY_FILE: path.join(tmp, 'master.key'),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...extra,
  };
}

export async function startTestService(databaseUrl: string, extra: Record<string, string> = {}): Promise<Service> {
  return startService(loadConfig(testEnv(databaseUrl, extra)));
}
