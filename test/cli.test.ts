/**
 * The embedded default and the CLI, as a person uses them: `dinhdanh start` with no DATABASE_URL starts its own
 * PostgreSQL (loopback only, password kept 0600 in DATA_DIR), seeds demo data and prints how to use it; CLI commands
 * join that server while the service runs and start it themselves when it does not; bad input is a one-line error
 * that writes nothing.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';

const root = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-cli-'));
chmodSync(tmp, 0o755); // the postgres system user (when tests run as root) must reach DATA_DIR
const env = {
  ...process.env,
  DATA_DIR: path.join(tmp, 'data'),
  MASTER_KEY_FILE: path.join(tmp, 'keys/master.key'),
  PORT: '0',
  LOG_LEVEL: 'warn',
  ARGON2_MEMORY_KIB: '1024',
  ARGON2_TIME_COST: '1',
  DATABASE_URL: '',
};

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['src/cli/main.ts', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function pgState() {
  return JSON.parse(readFileSync(path.join(env.DATA_DIR, 'embedded-postgres.json'), 'utf8')) as {
    port: number;
    password: string;
  };
}

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const s = pgState();
  const c = new pg.Client({
    host: '127.0.0.1',
    port: s.port,
    user: 'dinhdanh',
    password: s.password,
    database: 'dinhdanh',
  });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

let service: ChildProcess;
let url: string;
let output = '';

before(async () => {
  service = spawn(process.execPath, ['src/cli/main.ts', 'start'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  service.stdout?.on('data', (d) => {
    output += d;
  });
  service.stderr?.on('data', (d) => {
    output += d;
  });
  const started = Date.now();
  while (!/demo portal/.test(output)) {
    if (Date.now() - started > 20_000) throw new Error(`service did not start in 20 s:\n${output}`);
    if (service.exitCode !== null) throw new Error(`service exited:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  url = /listening on (\S+)/.exec(output)![1]!;
});
after(async () => {
  if (service && service.exitCode === null) {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
  }
});

describe('dinhdanh start (embedded default)', () => {
  it('serves discovery and prints the demo login and portal', async () => {
    const res = await fetch(`${url}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { issuer: string }).issuer, url);
    assert.match(output, /demo citizen:\s+personal ID 001090012345, password demo-password-2026/);
    assert.match(output, /client_id demo-portal/);
    const ready = await fetch(`${url}/readyz`);
    assert.deepEqual(await ready.json(), { status: 'ready', database: 'ok', pendingMigrations: [] });
  });

  it('keeps the generated database password 0600 and the master key 0600', () => {
    assert.equal(statSync(path.join(env.DATA_DIR, 'embedded-postgres.json')).mode & 0o777, 0o600);
    assert.equal(statSync(env.MASTER_KEY_FILE).mode & 0o777, 0o600);
  });

  it('runs PostgreSQL on loopback only, with the demo data seeded', async () => {
    const [listen] = await query<{ listen_addresses: string }>('show listen_addresses');
    assert.equal(listen?.listen_addresses, '127.0.0.1');
    const [n] = await query<{ n: string }>('select count(*) as n from residents');
    assert.equal(Number(n?.n), 3);
  });

  it('keeps the signing key sealed: no private key material in clear in the database', async () => {
    const rows = await query<{ public_jwk: Record<string, unknown>; private_jwk_sealed: string }>(
      'select public_jwk, private_jwk_sealed from signing_keys',
    );
    assert.equal(rows.length, 4, 'one active key per algorithm: ES256, PS256, RS256, EdDSA');
    for (const row of rows) {
      assert.equal(row.public_jwk.d, undefined);
      assert.match(row.private_jwk_sealed, /^v1\./);
      assert.doesNotMatch(row.private_jwk_sealed, /"d"/);
    }
  });
});

describe('dinhdanh clients (joining the running service)', () => {
  it('registers a portal, prints its secret once and stores only its SHA-256', async () => {
    const r = cli(
      'clients',
      'add',
      '--name',
      'Cổng Đất đai',
      '--redirect-uri',
      'https://land.example.vn/cb',
      '--post-logout-redirect-uri',
      'https://land.example.vn/',
      '--backchannel-logout-uri',
      'https://land.example.vn/bcl',
    );
    assert.equal(r.status, 0, r.stderr);
    const client = JSON.parse(r.stdout);
    assert.match(client.client_id, /^portal-/);
    assert.ok(client.client_secret.length >= 40);
    const [row] = await query<{ secret_sha256: string; metadata: Record<string, unknown> }>(
      'select secret_sha256, metadata from clients where client_id = $1',
      [client.client_id],
    );
    assert.equal(row?.secret_sha256, createHash('sha256').update(client.client_secret).digest('base64url'));
    assert.doesNotMatch(JSON.stringify(row?.metadata), new RegExp(client.client_secret));
    const list = cli('clients', 'list');
    assert.equal(list.status, 0);
    assert.doesNotMatch(list.stdout, /"client_secret"/);
    assert.ok(JSON.parse(list.stdout).some((c: { client_id: string }) => c.client_id === client.client_id));
  });

  for (const [label, args, message] of [
    ['a redirect URI that is not a URL', ['--redirect-uri', 'not a url'], /redirect URI is not a URL/],
    ['a plain-http redirect URI off loopback', ['--redirect-uri', 'http://portal.example.vn/cb'], /must be https/],
    ['a redirect URI with a fragment', ['--redirect-uri', 'https://p.example.vn/cb#x'], /fragment/],
    ['no redirect URI', [], /at least one redirect URI/],
    ['a bad client id', ['--redirect-uri', 'https://p.example.vn/cb', '--client-id', 'a b'], /client id must be/],
    [
      'the personal ID scope without --allow-personal-id',
      ['--redirect-uri', 'https://p.example.vn/cb', '--scopes', 'profile national_id'],
      /needs --allow-personal-id/,
    ],
    [
      'a duplicate client id',
      ['--redirect-uri', 'https://p.example.vn/cb', '--client-id', 'demo-portal'],
      /already exists/,
    ],
  ] as const) {
    it(`refuses ${label} with one line and writes nothing`, async () => {
      const [before] = await query<{ n: string }>('select count(*) as n from clients');
      const r = cli('clients', 'add', '--name', 'X', ...args);
      assert.equal(r.status, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      const [afterCount] = await query<{ n: string }>('select count(*) as n from clients');
      assert.equal(afterCount?.n, before?.n);
    });
  }

  it('says the database is up to date on migrate, and audits it', async () => {
    const r = cli('migrate', '--operator', 'dba-embedded');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /database is up to date/);
    const rows = await query<{ actor_id: string; details: unknown }>(
      `select actor_id, details from audit_events where action = 'database.migrated' order by seq desc limit 1`,
    );
    assert.deepEqual(rows, [{ actor_id: 'dba-embedded', details: { applied: [] } }]);
  });

  it('audits a registered portal in the same command', async () => {
    const r = cli(
      'clients',
      'add',
      '--name',
      'Cổng Thuế',
      '--redirect-uri',
      'https://tax.example.vn/cb',
      '--operator',
      'op-9',
    );
    assert.equal(r.status, 0, r.stderr);
    const { client_id } = JSON.parse(r.stdout);
    const rows = await query<{ actor_type: string; actor_id: string; details: unknown }>(
      `select actor_type, actor_id, details from audit_events where action = 'client.registered' and client_id = $1`,
      [client_id],
    );
    assert.deepEqual(rows, [
      {
        actor_type: 'operator',
        actor_id: 'op-9',
        details: {
          name: 'Cổng Thuế',
          redirectUris: ['https://tax.example.vn/cb'],
          authMethod: 'client_secret_basic',
          environment: 'production',
          via: 'cli',
        },
      },
    ]);
  });
});

/** A preload that prints, at exit, every module the process loaded (as JSON on stderr). */
const RECORD_MODULES = `data:text/javascript,${encodeURIComponent(`
  import { registerHooks } from 'node:module';
  const seen = [];
  registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });
  process.on('exit', () => process.stderr.write(JSON.stringify(seen)));
`)}`;

/** The files under src/ that `dinhdanh ...args` loads, relative to src/. */
function loadedBy(...args: string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', RECORD_MODULES, 'src/cli/main.ts', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const src = `${new URL('../src/', import.meta.url)}`;
  return (JSON.parse(r.stderr) as string[]).filter((u) => u.startsWith(src)).map((u) => u.slice(src.length));
}

describe('a command loads only what it runs', () => {
  // Tests and operators run a hundred commands: each one pays for its own group's modules, not the service's.
  it('`config` loads neither the service, nor the database, nor any command group', () => {
    const loaded = loadedBy('config');
    assert.ok(loaded.includes('cli/main.ts') && loaded.includes('config/index.ts'), loaded.join(' '));
    for (const f of ['main.ts', 'db/index.ts', 'cli/shared.ts', 'cli/clients.ts', 'cli/accounts.ts'])
      assert.ok(!loaded.includes(f), `${f} not loaded`);
  });
  it('`audit --help` loads its own group and no other, nor the service', () => {
    const loaded = loadedBy('audit', '--help');
    assert.ok(loaded.includes('cli/audit.ts'), loaded.join(' '));
    for (const f of ['main.ts', 'http/app.ts', 'cli/clients.ts', 'cli/keys.ts', 'cli/accounts.ts', 'cli/staff.ts'])
      assert.ok(!loaded.includes(f), `${f} not loaded`);
  });
  it('`clients --help` does not load the provider (the staff acts load it only to end sessions)', () => {
    const loaded = loadedBy('clients', '--help');
    assert.ok(loaded.includes('cli/clients.ts') && loaded.includes('admin/acts.ts'), loaded.join(' '));
    for (const f of ['oidc/index.ts', 'oidc/provider.ts']) assert.ok(!loaded.includes(f), `${f} not loaded`);
  });
});

describe('CLI with the service stopped', () => {
  it('starts the embedded server itself, and stops it again', async () => {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
    const r = cli('clients', 'list');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).some((c: { client_id: string }) => c.client_id === 'demo-portal'));
    await assert.rejects(query('select 1'), 'the server the command started is stopped again');
  });
});

describe('a service killed with kill -9', () => {
  it('leaves its embedded PostgreSQL running; the next start adopts it and stops it on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-kill-'));
    chmodSync(dir, 0o755);
    const own = { ...env, DATA_DIR: path.join(dir, 'data'), SHUTDOWN_GRACE_SECONDS: '0' };
    const startOne = async () => {
      const child = spawn(process.execPath, ['src/cli/main.ts', 'start'], { cwd: root, env: own, stdio: 'pipe' });
      let out = '';
      child.stdout?.on('data', (d) => {
        out += d;
      });
      child.stderr?.on('data', (d) => {
        out += d;
      });
      const t0 = Date.now();
      while (!/listening on/.test(out)) {
        if (child.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return child;
    };
    const state = () =>
      JSON.parse(readFileSync(path.join(own.DATA_DIR, 'embedded-postgres.json'), 'utf8')) as {
        port: number;
        password: string;
      };
    const reachable = async () => {
      const s = state();
      const c = new pg.Client({ host: '127.0.0.1', port: s.port, user: 'dinhdanh', password: s.password });
      c.on('error', () => {});
      try {
        await c.connect();
        return true;
      } catch {
        return false;
      } finally {
        await c.end().catch(() => {});
      }
    };
    const first = await startOne();
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    assert.equal(await reachable(), true, 'the orphaned PostgreSQL still runs');
    const second = await startOne();
    const exited = new Promise<number | null>((r) => second.once('exit', (code) => r(code)));
    second.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(await reachable(), false, 'stopped with the service that adopted it');
  });
});
