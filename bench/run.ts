/**
 * `npm run bench [-- --scenarios a,b --duration 10 --concurrency 16 --registry 10000,1000000 --rounds 1]` (`idle`:
 * bench/idle.ts's node nobody calls, in its own process, after the rest)
 *
 * Starts dinhdanh (on a fresh database of the machine's PostgreSQL when TEST_DATABASE_URL or DATABASE_URL is set,
 * else the embedded one) and, as the baseline in the same invocation, raw oidc-provider with its in-memory adapter
 * (bench/baseline.ts). Both are pinned to core 0; the load generator (bench/load.ts, a separate process) to core 1.
 * Runs alternate baseline / dinhdanh per scenario. Discovery and JWKS are also measured against Node's own ceiling
 * (bench/ceiling.ts); client_credentials and refresh again at half of dinhdanh's peak, open loop, for p99. Reports requests/s, p50/p99, errors, CPU ms per request and peak
 * RSS of the provider process, the ratio to the baseline, and per-core figures beside Keycloak's published sizing.
 * Writes bench/results/latest.json and bench/results/latest.md. Loopback only; every run is bounded in time.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { startEmbedded } from '../src/db/embedded.ts';
import { cookieFetch } from './browser.ts';
import { verdict } from './verdict.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    scenarios: {
      type: 'string',
      default: 'discovery,jwks,client_credentials,code,refresh,userinfo,introspection,login,idle',
    },
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    registry: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '1' },
    // How far past a target a measurement may land before the run fails (the spread of three runs on this machine).
    noise: { type: 'string', default: '0.15' },
  },
});
const scenarios = args.scenarios.split(',');
const durationMs = Number(args.duration) * 1000;
const concurrency = Number(args.concurrency);
const sizes = args.registry.split(',').map(Number);
const PASSWORD = 'demo-password-2026';
const REDIRECT = 'http://localhost:9/cb';
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();
const pinned = (core: number, cmd: string[]) => (hasTaskset ? ['taskset', '-c', String(core), ...cmd] : cmd);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function startProcess(
  cmd: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(cmd[0]!, cmd.slice(1), {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  // A server that dies during the run says why (its output is otherwise kept quiet).
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM')
      process.stderr.write(`${cmd.join(' ')} exited (${code ?? signal}):\n${out.slice(-4000)}\n`);
  });
  const t0 = Date.now();
  for (;;) {
    const m = ready.exec(out);
    if (m) return { child, match: m };
    if (child.exitCode !== null || Date.now() - t0 > 30_000) throw new Error(`${cmd.join(' ')} did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU seconds (user+system) and peak RSS (MiB) of a process, from /proc. */
function usage(pid: number): { cpu: number; sys: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const cpu = (Number(stat[11]) + Number(stat[12])) / 100;
  const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpu, sys: Number(stat[12]) / 100, rssMiB: Number(hwm ?? 0) / 1024 };
}

/** Finds the process actually running the server (taskset execs, npm does not sit in between). */
const serverPid = (child: ChildProcess) => child.pid!;

interface Target {
  name: 'baseline' | 'dinhdanh' | 'ceiling';
  issuer: string;
  pid: number;
  clientId: string;
  clientSecret: string;
  ccClientId: string;
  ccClientSecret: string;
  pins: string[];
}

/**
 * Follows one authorization request through the login page (and consent page, if any) to the code. With a cookie
 * jar that already holds a session, the provider answers with the code at once (single sign-on).
 */
async function authorize(
  t: Target,
  go: ReturnType<typeof cookieFetch>,
  pin: string,
  verifier: string,
  extra: Record<string, string> = {},
): Promise<string> {
  const q = new URLSearchParams({
    client_id: t.clientId,
    response_type: 'code',
    scope: 'openid profile',
    redirect_uri: REDIRECT,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...extra,
  });
  let loc = `${t.issuer}/auth?${q}`;
  for (let hop = 0; hop < 12 && !loc.startsWith(REDIRECT); hop++) {
    let res = await go(loc);
    if (res.status === 200) {
      const html = await res.text();
      const action = /action="([^"]*\/(login|consent))"/.exec(html);
      if (!action) throw new Error(`unexpected page at ${loc}`);
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
      res = await go(new URL(action[1]!, t.issuer).toString(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf, pin, password: PASSWORD }).toString(),
      });
    }
    loc = new URL(res.headers.get('location') ?? '', t.issuer).toString();
  }
  const code = new URL(loc).searchParams.get('code');
  if (!code) throw new Error(`${t.name}: no code at ${loc.slice(0, 200)}`);
  return code;
}

/** Drives authorization flows to mint access and refresh tokens, one citizen session each. */
async function mintTokens(t: Target, n: number): Promise<{ access: string[]; refresh: string[] }> {
  const access: string[] = [];
  const refresh: string[] = [];
  for (let i = 0; i < n; i++) {
    const verifier = randomBytes(32).toString('base64url');
    const code = await authorize(t, cookieFetch(), t.pins[i % t.pins.length]!, verifier, {
      scope: 'openid profile offline_access',
      prompt: 'consent',
    });
    const res = await fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${t.clientId}:${t.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
      }).toString(),
    });
    const body = (await res.json()) as { access_token: string; refresh_token?: string };
    if (!body.refresh_token)
      throw new Error(`${t.name}: no refresh token minted: ${JSON.stringify(body).slice(0, 300)}`);
    access.push(body.access_token);
    refresh.push(body.refresh_token);
  }
  return { access, refresh };
}

/**
 * Mints authorization codes for the `code` scenario: `concurrency` citizens log in once, then each asks again and
 * again with its session (single sign-on, no password), for at most `budgetMs` or `max` codes. Codes live 60 s.
 */
async function mintCodes(t: Target, max: number, budgetMs: number): Promise<{ codes: string[]; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const codes: string[] = [];
  const until = Date.now() + budgetMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, vu) => {
      const go = cookieFetch();
      while (codes.length < max && Date.now() < until)
        codes.push(await authorize(t, go, t.pins[vu % t.pins.length]!, verifier));
    }),
  );
  return { codes, verifier };
}

const hasWrk = (() => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    return (err as { status?: number }).status === 1; // wrk --version exits 1 after printing
  }
})();

/** Scenarios whose requests are all alike: measured with wrk (C) when installed, which loads far harder than Node. */
const WRK_SCENARIOS = new Set(['discovery', 'jwks', 'client_credentials', 'userinfo', 'introspection']); // not code: each code is single-use

/**
 * Child processes run asynchronously: a blocked event loop would keep the runner's own keep-alive connections from
 * seeing a server close them, and the next fetch would fail on a dead socket.
 */
const exec = promisify(execFile);

async function wrkRun(
  t: Target,
  scenario: string,
  token: string | undefined,
): Promise<{ requests: number; rps: number; p50: number; p99: number; errors: number }> {
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const req = {
    discovery: { path: '/.well-known/openid-configuration', method: 'GET', headers: {}, body: '' },
    jwks: { path: '/jwks', method: 'GET', headers: {}, body: '' },
    client_credentials: {
      path: '/token',
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: basic(t.ccClientId, t.ccClientSecret),
      },
      body: 'grant_type=client_credentials',
    },
    userinfo: { path: '/me', method: 'GET', headers: { Authorization: `Bearer ${token}` }, body: '' },
    introspection: {
      path: '/token/introspection',
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: basic(t.clientId, t.clientSecret),
      },
      body: `token=${token}`,
    },
  }[scenario]!;
  const lua = [
    `wrk.method = "${req.method}"`,
    `wrk.body = "${req.body}"`,
    ...Object.entries(req.headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
  ].join('\n');
  const script = path.join(os.tmpdir(), `dinhdanh-wrk-${process.pid}.lua`);
  writeFileSync(script, lua);
  const cmd = pinned(1, [
    'wrk',
    '-t1',
    `-c${concurrency}`,
    `-d${durationMs / 1000}s`,
    '--latency',
    '-s',
    script,
    `${t.issuer}${req.path}`,
  ]);
  const { stdout: out } = await exec(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: durationMs + 30_000 });
  const ms = (label: string) => {
    const m = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return 0;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, x) => a + Number(x), 0) : 0);
  return {
    requests,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: ms('50'),
    p99: ms('99'),
    errors,
  };
}

interface Result {
  target: string;
  scenario: string;
  registry: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuMsPerRequest: number;
  /** The part of cpuMsPerRequest spent in the kernel (sockets: HTTP and PostgreSQL round trips). */
  sysMsPerRequest: number;
  peakRssMiB: number;
  /** Set on open-loop runs: the offered load in requests/s. */
  rate?: number;
  firstError?: string;
}

/** One measured run; with `rate`, an open-loop run at that many requests/s (Node generator). */
async function run(t: Target, scenario: string, registry: number, rate?: number): Promise<Result> {
  const tokens = ['refresh', 'userinfo', 'introspection'].includes(scenario)
    ? await mintTokens(t, concurrency)
    : { access: [], refresh: [] };
  const codes = scenario === 'code' ? await mintCodes(t, 20_000, durationMs) : undefined;
  const cc = scenario === 'client_credentials';
  const file = path.join(os.tmpdir(), `dinhdanh-load-${process.pid}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      scenario,
      issuer: t.issuer,
      durationMs,
      concurrency,
      clientId: cc ? t.ccClientId : t.clientId,
      clientSecret: cc ? t.ccClientSecret : t.clientSecret,
      redirectUri: REDIRECT,
      password: PASSWORD,
      pins: t.pins,
      refreshTokens: tokens.refresh,
      accessTokens: tokens.access,
      ...codes,
      ...(rate ? { rate } : {}),
    }),
    { mode: 0o600 },
  );
  const before = usage(t.pid);
  if (hasWrk && WRK_SCENARIOS.has(scenario) && !rate) {
    const w = await wrkRun(t, scenario, tokens.access[0]);
    const after = usage(t.pid);
    return {
      target: t.name,
      scenario,
      registry,
      rps: Math.round(w.rps),
      p50: w.p50,
      p99: w.p99,
      errors: w.errors,
      cpuMsPerRequest: w.requests ? Math.round(((after.cpu - before.cpu) * 1e7) / w.requests) / 1e4 : 0,
      sysMsPerRequest: w.requests ? Math.round(((after.sys - before.sys) * 1e7) / w.requests) / 1e4 : 0,
      peakRssMiB: Math.round(after.rssMiB),
      ...(rate ? { rate } : {}),
    };
  }
  const load = pinned(1, [process.execPath, 'bench/load.ts', file]);
  const { stdout: out } = await exec(load[0]!, load.slice(1), {
    cwd: root,
    encoding: 'utf8',
    timeout: durationMs + 60_000,
  });
  const after = usage(t.pid);
  const r = JSON.parse(out.trim().split('\n').at(-1)!);
  return {
    target: t.name,
    scenario,
    registry,
    rps: Math.round(r.rps),
    p50: Math.round(r.p50 * 10) / 10,
    p99: Math.round(r.p99 * 10) / 10,
    errors: r.errors,
    cpuMsPerRequest: r.requests ? Math.round(((after.cpu - before.cpu) * 1e7) / r.requests) / 1e4 : 0,
    sysMsPerRequest: r.requests ? Math.round(((after.sys - before.sys) * 1e7) / r.requests) / 1e4 : 0,
    peakRssMiB: Math.round(after.rssMiB),
    ...(rate ? { rate } : {}),
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

/**
 * argon2id verifies per full login: verifyPassword runs the hash exactly once (a rehash only follows a change of
 * parameters, which the bench never makes: every account holds the demo hash made with the current ones).
 */
const HASHES_PER_LOGIN = 1;

/**
 * Run in a child on the provider's core: the service's own hasher (src/credentials/password.ts) with the parameters
 * its configuration gives for `env`, verifying a correct password 4 at a time (libuv's default pool, as under load).
 * Prints the process CPU (user + system, argon2's pool threads included) per verify.
 */
const ARGON2_PROBE = `
const { loadConfig } = await import('./src/config/index.ts');
const { argon2idHasher } = await import('./src/credentials/password.ts');
const hasher = await argon2idHasher(loadConfig().argon2);
const hash = await hasher.hash('probe password');
const n = Number(process.env.PROBE_VERIFIES);
const verify = async () => { if (!(await hasher.verifyOrDummy(hash, 'probe password'))) throw new Error('no match'); };
for (let i = 0; i < 8; i++) await verify();
const before = process.cpuUsage();
let next = 0;
await Promise.all(Array.from({ length: 4 }, async () => { while (next++ < n) await verify(); }));
const used = process.cpuUsage(before);
process.stdout.write(JSON.stringify({ cpuMsPerVerify: (used.user + used.system) / 1000 / n }) + '\\n');
`;

/** CPU ms of one argon2id verify (ARGON2_PROBE), the median of three rounds of 40. */
async function argon2CpuMs(env: Record<string, string>): Promise<number> {
  const cmd = pinned(0, [process.execPath, '--input-type=module', '-e', ARGON2_PROBE]);
  const rounds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { stdout } = await exec(cmd[0]!, cmd.slice(1), {
      cwd: root,
      env: { ...process.env, ...env, PROBE_VERIFIES: '40' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    rounds.push(JSON.parse(stdout.trim().split('\n').at(-1)!).cpuMsPerVerify);
  }
  return Math.round(rounds.sort((a, b) => a - b)[1]! * 100) / 100;
}

// ---- database for dinhdanh
const server = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
const embedded = server ? null : await startEmbedded(path.join(root, '.tmp/bench-pg'), 0);
const adminUrl = server ?? embedded!.url;
const dbName = `dd_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
admin.on('error', () => {});
await admin.connect();
await admin.query(`create database ${dbName}`);
const u = new URL(adminUrl);
u.pathname = `/${dbName}`;
const dbUrl = u.toString();

const children: ChildProcess[] = [];
const cleanup = async () => {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => {});
  await admin.end();
  await embedded?.stop();
};

try {
  const port = await freePort();
  const metricsPort = await freePort();
  const env = {
    DATABASE_URL: dbUrl,
    PORT: String(port),
    ISSUER: `http://localhost:${port}`,
    LOG_LEVEL: 'warn',
    DEMO_SEED: 'always',
    MASTER_KEY: randomBytes(32).toString('base64'),
    DB_POOL_SIZE: process.env.DB_POOL_SIZE ?? '10',
    // Scraped around the half-peak runs for the event-loop delay and GC pauses behind the tail.
    METRICS_PORT: String(metricsPort),
    METRICS_HOST: '127.0.0.1',
    LOGIN_IP_FAILURES: '1000000',
  };
  // PROFILE_DIR=/tmp/prof: dinhdanh writes a V8 CPU profile there when it stops (open it in Chrome DevTools).
  const profile = process.env.PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE_DIR}`] : [];
  const dd = await startProcess(
    // Started as `npm start` starts it (same V8 flags).
    pinned(0, [process.execPath, '--max-semi-space-size=8', ...profile, 'src/cli/main.ts', 'start']),
    env,
    /listening on (\S+)/,
  );
  children.push(dd.child);
  const cli = (...a: string[]) =>
    JSON.parse(
      execFileSync(process.execPath, ['src/cli/main.ts', ...a], {
        cwd: root,
        env: { ...process.env, ...env },
        encoding: 'utf8',
      }),
    );
  const portal = cli(
    'clients',
    'add',
    '--name',
    'Bench portal',
    '--redirect-uri',
    REDIRECT,
    '--scopes',
    'openid profile offline_access',
    '--consent',
    'implicit',
  );
  const service = cli('clients', 'add', '--name', 'Bench service', '--client-credentials', '--scopes', 'openid');
  const db = new pg.Client({ connectionString: dbUrl });
  db.on('error', () => {});
  await db.connect();
  const hash = (await db.query<{ h: string }>('select password_hash as h from accounts limit 1')).rows[0]!.h;

  /** Grows the registry to `n` residents with accounts (synthetic numbers starting with 9; same password hash). */
  async function growRegistry(n: number): Promise<string[]> {
    const have = Number(
      (await db.query<{ n: string }>("select count(*) as n from residents where pin like '9%'")).rows[0]!.n,
    );
    if (n > have) {
      await db.query(
        `insert into residents (pin, full_name, family_name, given_name, birth_date, sex)
         select '9' || lpad(i::text, 11, '0'), 'Nguyễn Văn ' || i, 'Nguyễn', 'Văn ' || i, date '1990-01-01' + (i % 9000), case when i % 2 = 0 then 'male' else 'female' end
         from generate_series($1::int + 1, $2::int) i`,
        [have, n],
      );
      await db.query(
        `insert into accounts (resident_id, password_hash) select r.id, $1 from residents r
         left join accounts a on a.resident_id = r.id where a.id is null and r.pin like '9%'`,
        [hash],
      );
      await db.query('analyze residents; analyze accounts');
    }
    // Log in as residents spread over the whole table.
    return Array.from({ length: 64 }, (_, i) => `9${String(Math.floor(((i + 0.5) * n) / 64) + 1).padStart(11, '0')}`);
  }

  // With PROFILE_DIR the baseline's profile goes to PROFILE_DIR/baseline, to compare the two by module.
  const baseProfile = process.env.PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE_DIR}/baseline`]
    : [];
  const base = await startProcess(
    pinned(0, [process.execPath, ...baseProfile, 'bench/baseline.ts']),
    {},
    /listening (\S+)/,
  );
  children.push(base.child);
  const pins = await growRegistry(sizes[0]!);
  const targets: Target[] = [
    {
      name: 'baseline',
      issuer: base.match[1]!,
      pid: serverPid(base.child),
      clientId: 'bench-portal',
      clientSecret: 'bench-secret-bench-secret-bench-secret',
      ccClientId: 'bench-portal',
      ccClientSecret: 'bench-secret-bench-secret-bench-secret',
      pins,
    },
    {
      name: 'dinhdanh',
      issuer: dd.match[1]!,
      pid: serverPid(dd.child),
      clientId: portal.client_id,
      clientSecret: portal.client_secret,
      ccClientId: service.client_id,
      ccClientSecret: service.client_secret,
      pins,
    },
  ];

  const results: Result[] = [];
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const scenario of scenarios.filter((x) => x !== 'idle')) {
      for (const t of targets) {
        const r = await run(t, scenario, sizes[0]!);
        results.push(r);
        process.stderr.write(`${JSON.stringify(r)}\n`);
      }
    }
  }
  // Node's ceiling for the pre-serialized documents: the same bytes and headers from a bare http server.
  const documentScenarios = scenarios.filter((x) => x === 'discovery' || x === 'jwks');
  if (documentScenarios.length && hasWrk) {
    const docs: Record<string, { body: string; headers: Record<string, string> }> = {};
    for (const p of ['/jwks', '/.well-known/openid-configuration']) {
      const res = await fetch(`${targets[1]!.issuer}${p}`);
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(k)) headers[k] = v;
      });
      docs[p] = { body: await res.text(), headers };
    }
    const file = path.join(os.tmpdir(), `dinhdanh-ceiling-${process.pid}.json`);
    writeFileSync(file, JSON.stringify(docs));
    const ceiling = await startProcess(pinned(0, [process.execPath, 'bench/ceiling.ts', file]), {}, /listening (\S+)/);
    children.push(ceiling.child);
    const c: Target = { ...targets[0]!, name: 'ceiling', issuer: ceiling.match[1]!, pid: serverPid(ceiling.child) };
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const scenario of documentScenarios) {
        const r = await run(c, scenario, sizes[0]!);
        results.push(r);
        process.stderr.write(`${JSON.stringify(r)}\n`);
      }
    }
    ceiling.child.kill('SIGTERM');
  }
  /**
   * dinhdanh's Prometheus figures: event-loop delay (prom-client's monitorEventLoopDelay histogram, reset at each
   * scrape) and GC pauses counted by length.
   */
  const scrape = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    // Pauses longer than `le` seconds: every GC counted, less those in the buckets up to `le` (any label order).
    const lines = text.split('\n');
    const sum = (pick: (l: string) => boolean) =>
      lines.filter(pick).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const total = sum((l) => l.startsWith('nodejs_gc_duration_seconds_count'));
    const upTo = (le: string) =>
      sum((l) => l.startsWith('nodejs_gc_duration_seconds_bucket') && l.includes(`le="${le}"`));
    return {
      lagMax: num(/^nodejs_eventloop_lag_max_seconds (\S+)$/m),
      lagP99: num(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m),
      gcOver10ms: total - upTo('0.01'),
      gcOver100ms: total - upTo('0.1'),
    };
  };
  /** Samples what dinhdanh's active PostgreSQL backends wait on, every 10 ms, until stopped (wait -> samples). */
  const sampleWaits = () => {
    const seen: Record<string, number> = {};
    let on = true;
    const loop = (async () => {
      while (on) {
        const { rows } = await db.query<{ w: string }>(
          `select coalesce(wait_event_type || ':' || wait_event, 'cpu') as w from pg_stat_activity
           where datname = $1 and state = 'active' and pid <> pg_backend_pid()`,
          [dbName],
        );
        for (const { w } of rows) seen[w] = (seen[w] ?? 0) + 1;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    return {
      stop: async () => {
        on = false;
        await loop;
        return seen;
      },
    };
  };
  /**
   * Milliseconds the main thread of `pid` (the event loop) spent runnable but not running: waiting for a core that
   * other processes held (/proc/<pid>/task/<pid>/schedstat, second field).
   */
  const runQueueMs = (pid: number) =>
    Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
  const halfPeakStalls = new Map<string, Record<string, unknown>>();
  // Latency of the token endpoint at half of dinhdanh's peak (open loop, so a stall shows in p99).
  for (const scenario of scenarios.filter((x) => x === 'client_credentials' || x === 'refresh')) {
    const peak = results.filter((r) => r.target === 'dinhdanh' && r.scenario === scenario && !r.rate);
    const rate = Math.max(1, Math.round(peak.reduce((a, r) => a + r.rps, 0) / peak.length / 2));
    await scrape(); // resets the event-loop delay histogram
    const gcBefore = await scrape();
    const waits = sampleWaits();
    const queuedBefore = runQueueMs(targets[1]!.pid);
    const r = await run(targets[1]!, scenario, sizes[0]!, rate);
    const queued = runQueueMs(targets[1]!.pid) - queuedBefore;
    const after = await scrape();
    const stalls = {
      loopDelayMaxMs: Math.round(after.lagMax * 1e4) / 10,
      loopDelayP99Ms: Math.round(after.lagP99 * 1e4) / 10,
      gcOver10ms: after.gcOver10ms - gcBefore.gcOver10ms,
      gcOver100ms: after.gcOver100ms - gcBefore.gcOver100ms,
      dbWaits: await waits.stop(),
      // Time dinhdanh's event loop was runnable but waited for a core (other processes had both).
      runQueueMsPerSecond: Math.round(queued / (durationMs / 1000)),
    };
    halfPeakStalls.set(scenario, stalls);
    results.push(r);
    process.stderr.write(`${JSON.stringify({ ...r, ...stalls })}\n`);
  }
  // What one argon2id verify costs on the provider's core, with the service's parameters, measured in this run: the
  // part of a login's CPU that is the password hash itself (the library's baseline pays the same).
  const argon2Ms = scenarios.includes('login') ? await argon2CpuMs(env) : null;
  if (argon2Ms != null) process.stderr.write(`${JSON.stringify({ argon2idCpuMsPerVerify: argon2Ms })}\n`);
  for (const size of sizes.slice(1)) {
    process.stderr.write(`growing the registry to ${size} residents with accounts...\n`);
    const more = await growRegistry(size);
    const dinhdanh = { ...targets[1]!, pins: more };
    const r = await run(dinhdanh, 'login', size);
    results.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
  await db.end();

  // ---- report
  const keycloakPerCore: Record<string, number> = { login: 15, client_credentials: 120, refresh: 120 };
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const rows = [...new Set(results.map((r) => `${r.scenario}@${r.registry}`))].map((key) => {
    const [scenario, registry] = key.split('@');
    const of = (name: string) =>
      results.filter((r) => r.target === name && r.scenario === scenario && String(r.registry) === registry && !r.rate);
    const d = of('dinhdanh');
    const b = of('baseline');
    const c = of('ceiling');
    const dr = avg(d.map((r) => r.rps));
    const br = avg(b.map((r) => r.rps));
    return {
      scenario,
      registry: Number(registry),
      dinhdanhRps: Math.round(dr),
      baselineRps: b.length ? Math.round(br) : null,
      ratio: b.length ? Math.round((dr / br) * 100) / 100 : null,
      p50: avg(d.map((r) => r.p50)),
      p99: avg(d.map((r) => r.p99)),
      errors: d.reduce((a, r) => a + r.errors, 0),
      cpuMsPerRequest: avg(d.map((r) => r.cpuMsPerRequest)),
      sysMsPerRequest: avg(d.map((r) => r.sysMsPerRequest)),
      baselineCpuMsPerRequest: b.length ? avg(b.map((r) => r.cpuMsPerRequest)) : null,
      baselineSysMsPerRequest: b.length ? avg(b.map((r) => r.sysMsPerRequest)) : null,
      perCore: avg(d.map((r) => (r.cpuMsPerRequest ? 1000 / r.cpuMsPerRequest : 0))),
      peakRssMiB: Math.max(...d.map((r) => r.peakRssMiB)),
      keycloakPerCore: keycloakPerCore[scenario!] ?? null,
      ceilingRps: c.length ? Math.round(avg(c.map((r) => r.rps))) : null,
      ceilingPerCore: c.length
        ? Math.round(avg(c.map((r) => (r.cpuMsPerRequest ? 1000 / r.cpuMsPerRequest : 0))))
        : null,
    };
  });
  const halfPeak = results
    .filter((r) => r.rate)
    .map((r) => ({ scenario: r.scenario, offered: r.rate!, rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors }));
  mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    durationSeconds: durationMs / 1000,
    concurrency,
    pinned: hasTaskset,
    node: process.version,
    database: server ? 'external' : 'embedded',
  };
  writeFileSync(
    path.join(root, 'bench/results/latest.json'),
    JSON.stringify({ meta, rows, halfPeak, results }, null, 2),
  );
  const login = rows.find((r) => r.scenario === 'login' && r.registry === sizes[0]);
  const md = [
    `Run ${meta.date}: ${meta.durationSeconds} s per run, ${concurrency} concurrent users, provider on core 0${hasTaskset ? '' : ' (not pinned: no taskset)'}, PostgreSQL ${meta.database}.`,
    '',
    '| scenario | registry | dinhdanh req/s | baseline req/s | ratio | p50 ms | p99 ms | errors | CPU ms/req (kernel) | baseline CPU ms/req (kernel) | req/s per core | Keycloak per vCPU | peak RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.registry} | ${r.dinhdanhRps} | ${r.baselineRps ?? '—'} | ${r.ratio ?? '—'} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors} | ${r.cpuMsPerRequest.toFixed(2)} (${r.sysMsPerRequest.toFixed(2)}) | ${r.baselineCpuMsPerRequest == null ? '—' : `${r.baselineCpuMsPerRequest.toFixed(2)} (${r.baselineSysMsPerRequest!.toFixed(2)})`} | ${Math.round(r.perCore)} | ${r.keycloakPerCore ?? '—'} | ${r.peakRssMiB} |`,
    ),
    ...(rows.some((r) => r.ceilingRps)
      ? [
          '',
          "Node's ceiling for pre-serialized documents (bench/ceiling.ts: a bare http server, same bytes and headers):",
          '',
          '| scenario | dinhdanh req/s | ceiling req/s | ratio | dinhdanh per core | ceiling per core |',
          '|---|---|---|---|---|---|',
          ...rows
            .filter((r) => r.ceilingRps)
            .map(
              (r) =>
                `| ${r.scenario} | ${r.dinhdanhRps} | ${r.ceilingRps} | ${Math.round((r.dinhdanhRps / r.ceilingRps!) * 100) / 100} | ${Math.round(r.perCore)} | ${r.ceilingPerCore} |`,
            ),
        ]
      : []),
    ...(halfPeak.length
      ? [
          '',
          "Token endpoint at half of the peak above (open loop, latency from each request's scheduled start):",
          '',
          '| scenario | offered req/s | achieved req/s | p50 ms | p99 ms | errors |',
          '|---|---|---|---|---|---|',
          ...halfPeak.map(
            (h) =>
              `| ${h.scenario} | ${h.offered} | ${h.rps} | ${h.p50.toFixed(1)} | ${h.p99.toFixed(1)} | ${h.errors} |`,
          ),
          '',
          'During those runs (event-loop delay from monitorEventLoopDelay, GC pauses by length, samples every 10 ms of',
          "what dinhdanh's active PostgreSQL backends waited on):",
          '',
          '| scenario | loop delay p99 ms | loop delay max ms | GC pauses > 10 ms | > 100 ms | event loop waiting for a core, ms/s | PostgreSQL waits (samples) |',
          '|---|---|---|---|---|---|---|',
          ...halfPeak.map((h) => {
            const s = halfPeakStalls.get(h.scenario) as
              | {
                  loopDelayP99Ms: number;
                  loopDelayMaxMs: number;
                  gcOver10ms: number;
                  gcOver100ms: number;
                  runQueueMsPerSecond: number;
                  dbWaits: Record<string, number>;
                }
              | undefined;
            if (!s) return `| ${h.scenario} | — | — | — | — | — | — |`;
            const waits = Object.entries(s.dbWaits)
              .sort((a, b) => b[1] - a[1])
              .map(([w, n]) => `${w} ${n}`)
              .join(', ');
            return `| ${h.scenario} | ${s.loopDelayP99Ms} | ${s.loopDelayMaxMs} | ${s.gcOver10ms} | ${s.gcOver100ms} | ${s.runQueueMsPerSecond} | ${waits || 'none'} |`;
          }),
        ]
      : []),
    ...(login && argon2Ms != null
      ? [
          '',
          `Full login CPU on core 0 (all requests of one login): dinhdanh ${login.cpuMsPerRequest.toFixed(1)} ms, the library ${login.baselineCpuMsPerRequest?.toFixed(1) ?? '—'} ms; one argon2id verify with the service's parameters ${argon2Ms.toFixed(1)} ms (measured in this run, 4 at a time on core 0), ${HASHES_PER_LOGIN} per login. Outside argon2id: dinhdanh ${(login.cpuMsPerRequest - HASHES_PER_LOGIN * argon2Ms).toFixed(1)} ms, the library ${login.baselineCpuMsPerRequest == null ? '—' : (login.baselineCpuMsPerRequest - HASHES_PER_LOGIN * argon2Ms).toFixed(1)} ms.`,
        ]
      : []),
  ].join('\n');
  // ---- targets (issue "Performance II"): one line each, met or missed; missed beyond the noise fails the run
  const noise = Number(args.noise);
  type Verdict = { target: string; measured: number | null; limit: number; better: 'lower' | 'higher' };
  const verdicts: Verdict[] = [];
  const cpuOf = (name: string, scenario: string) =>
    avg(results.filter((r) => r.target === name && r.scenario === scenario && !r.rate).map((r) => r.cpuMsPerRequest));
  for (const scenario of ['client_credentials', 'code', 'refresh', 'userinfo', 'introspection']) {
    if (!scenarios.includes(scenario)) continue;
    const base = cpuOf('baseline', scenario);
    verdicts.push({
      target: `${scenario}: CPU per request vs the in-memory library`,
      measured: base ? Math.round((cpuOf('dinhdanh', scenario) / base) * 100) / 100 : null,
      limit: 2.0,
      better: 'lower',
    });
  }
  for (const h of halfPeak.filter((x) => x.scenario === 'client_credentials' || x.scenario === 'refresh'))
    verdicts.push({ target: `${h.scenario}: p99 ms at half of peak`, measured: h.p99, limit: 25, better: 'lower' });
  if (login?.ratio != null)
    verdicts.push({ target: 'login: rate vs the library', measured: login.ratio, limit: 0.9, better: 'higher' });
  if (login && argon2Ms != null)
    verdicts.push({
      target: 'login: provider CPU ms per login outside argon2id',
      measured: Math.round((login.cpuMsPerRequest - HASHES_PER_LOGIN * argon2Ms) * 10) / 10,
      limit: 10,
      better: 'lower',
    });
  // An idle node's CPU (bench/idle.ts, its own process: a node nobody calls, 30 s after a warm-up).
  if (scenarios.includes('idle')) {
    const out = await promisify(execFile)(process.execPath, [path.join(root, 'bench/idle.ts'), '--seconds', '30'], {
      env: process.env,
      maxBuffer: 1 << 24,
    }).then(
      (r) => r.stdout,
      (err: { stdout?: string }) => err.stdout ?? '',
    );
    const idle = /^target idle node: ([\d.]+)/m.exec(out);
    verdicts.push({
      target: 'idle node: % of a core',
      measured: idle ? Number(idle[1]) : null,
      limit: 1,
      better: 'lower',
    });
  }
  const outcome = (v: Verdict) =>
    v.measured === null ? 'not measured' : verdict(v.measured, v.limit, v.better, noise);
  const targetLines = verdicts.map(
    (v) =>
      `target ${v.target}: ${v.measured ?? '—'} (${v.better === 'lower' ? 'at most' : 'at least'} ${v.limit}): ${outcome(v)}`,
  );
  writeFileSync(path.join(root, 'bench/results/latest.md'), `${md}\n\n${targetLines.join('\n')}\n`);
  process.stdout.write(`${md}\n\n${targetLines.join('\n')}\n`);
  if (verdicts.some((v) => outcome(v) === 'missed')) process.exitCode = 1;
} finally {
  await cleanup();
}
