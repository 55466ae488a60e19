/**
 * `npm run faults [-- --scenarios restart,terminate,pause,connections,sigterm,kill9 --duration 30 --workers 8]`
 *
 * The long versions of test/faults/: three dinhdanh processes behind a health-checking HTTP balancer, on a
 * PostgreSQL of their own (restartable, pausable), a steady load of logins, refreshes and client_credentials
 * grants; each fault is injected in the middle of `--duration` seconds of load. Prints one row per scenario:
 * requests, failures by status, dropped connections, data lost (tokens reported issued but not stored, completed
 * logins missing from the audit trail, a broken chain) and the recovery time (from the end of the fault to the last
 * failed request). Loopback only; bounded in time.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { verifyChain } from '../src/audit/index.ts';
import { addClient } from '../src/clients/index.ts';
import { connect } from '../src/db/index.ts';
import { issuedRowIds, type LoadTarget, startLoad, type Tally } from '../test/helpers/load.ts';
import { connectionHog, startPgServer } from '../test/helpers/pgserver.ts';
import { freePort, type NodeProcess, startNode } from '../test/helpers/process.ts';
import { startProxy } from '../test/helpers/proxy.ts';
import { testEnv } from '../test/helpers/service.ts';
import { until } from '../test/helpers/wait.ts';

const { values: args } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'restart,terminate,pause,connections,sigterm,kill9' },
    duration: { type: 'string', default: '30' },
    workers: { type: 'string', default: '8' },
  },
});
const duration = Number(args.duration) * 1000;
const workers = Number(args.workers);
const REDIRECT = 'http://localhost:4702/cb';

const server = await startPgServer({ max_connections: '60', superuser_reserved_connections: '3' });
await server.query('create role dinhdanh login');
await server.query('create database dinhdanh owner dinhdanh');
const appUrl = `postgres://dinhdanh@127.0.0.1:${server.port}/dinhdanh`;
const ports = [await freePort(), await freePort(), await freePort()];
const proxyPort = await freePort();
const env = testEnv(appUrl, {
  ISSUER: `http://localhost:${proxyPort}`,
  MASTER_KEY: randomBytes(32).toString('base64'),
  LOG_LEVEL: 'warn',
  DB_POOL_SIZE: '8',
  SHUTDOWN_GRACE_SECONDS: '2',
  LOGIN_MAX_FAILURES: '100',
  LOGIN_IP_FAILURES: '1000000',
});
const nodes: NodeProcess[] = [];
const start = async (i: number) => {
  nodes[i] = await startNode({ ...env, PORT: String(ports[i]), ...(i ? { DEMO_SEED: 'never' } : {}) });
};
await start(0);
await Promise.all([start(1), start(2)]);
const backends = ports.map((p) => `http://localhost:${p}`);
const proxy = await startProxy(backends, proxyPort);
const db = connect(appUrl, 2);
const portal = await addClient(db, { name: 'Cổng thử nghiệm', redirectUris: [REDIRECT] });
const service = await addClient(db, { name: 'Dịch vụ nền', redirectUris: [], clientCredentials: true });
const target: LoadTarget = {
  issuer: proxy.url,
  nodes: [],
  portal: { clientId: portal.client_id, secret: portal.client_secret!, redirectUri: REDIRECT },
  service: { clientId: service.client_id, secret: service.client_secret! },
};

const hog = connectionHog(appUrl);

/** Stops node `i` with `signal` and starts it again; resolves with the time it was gone. */
async function replace(i: number, signal: NodeJS.Signals): Promise<number> {
  const node = nodes[i]!;
  const exited = new Promise((r) => node.child.once('exit', r));
  node.child.kill(signal);
  await exited;
  const at = Date.now();
  await start(i);
  return at;
}

/** Each fault resolves with the time it ended (the database or the node is back). */
const faults: Record<string, () => Promise<number>> = {
  async restart() {
    await server.stop();
    await new Promise((r) => setTimeout(r, 3000)); // the outage itself lasts 3 s
    await server.start();
    return Date.now();
  },
  async terminate() {
    await server.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'dinhdanh'");
    return Date.now();
  },
  async pause() {
    server.pause();
    await new Promise((r) => setTimeout(r, 10_000)); // SIGSTOP for 10 s
    server.resume();
    return Date.now();
  },
  async connections() {
    await hog.seize();
    await server.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'dinhdanh'");
    await hog.seize();
    await new Promise((r) => setTimeout(r, 5000));
    await hog.release();
    return Date.now();
  },
  sigterm: () => replace(1, 'SIGTERM'),
  kill9: () => replace(2, 'SIGKILL'),
};

async function lost(tally: Tally): Promise<string> {
  const ids = await issuedRowIds(db, env.MASTER_KEY!, tally);
  const stored = await sql<{ n: string }>`select count(*) as n from oidc_payloads where id = any(${ids})`.execute(db);
  const missingTokens = tally.issued.length - Number(stored.rows[0]!.n);
  const chain = await verifyChain(db);
  const parts = [];
  if (missingTokens) parts.push(`${missingTokens} tokens`);
  if ((await auditedLogins()) < totalLogins + tally.logins) parts.push('logins not audited');
  if (!chain.ok) parts.push('chain broken');
  totalLogins += tally.logins;
  return parts.join(', ') || 'none';
}

async function auditedLogins(): Promise<number> {
  const r = await sql<{ n: string }>`select count(*) as n from audit_events
    where action = 'login' and outcome = 'success'`.execute(db);
  return Number(r.rows[0]!.n);
}
let totalLogins = await auditedLogins();

const rows: string[][] = [];
for (const name of args.scenarios.split(',')) {
  const fault = faults[name];
  if (!fault) throw new Error(`unknown scenario ${name}; known: ${Object.keys(faults).join(', ')}`);
  await until('all nodes in rotation', () => proxy.ready().length === 3, 60_000);
  const load = startLoad(target, { workers });
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, duration / 3)); // load before the fault
  const back = await fault();
  const rest = Math.max(0, t0 + duration - Date.now());
  await new Promise((r) => setTimeout(r, Math.max(rest, 5000))); // load after it
  const tally = await load.stop();
  await until(
    'the audit trail has every completed login',
    async () => (await auditedLogins()) >= totalLogins + tally.logins,
    15_000,
  ).catch(() => {});
  const failures: Record<string, number> = {};
  let dropped = 0;
  let lastFailure = back;
  for (const o of tally.outcomes) {
    if (o.result === 'ok') continue;
    if (o.result === 'dropped') dropped++;
    else {
      // The balancer's own 503 (every node out of rotation) is told apart from a node's.
      const key = o.result === 503 && o.detail?.startsWith('no backend') ? '503 (balancer)' : String(o.result);
      failures[key] = (failures[key] ?? 0) + 1;
    }
    lastFailure = Math.max(lastFailure, o.at);
  }
  const exited = nodes.filter((n) => n.child.exitCode !== null && n.child.signalCode === null).length;
  rows.push([
    name,
    String(tally.outcomes.length),
    Object.entries(failures)
      .map(([k, v]) => `${v}×${k}`)
      .join(' ') || '0',
    String(dropped),
    await lost(tally),
    ((lastFailure - back) / 1000).toFixed(1),
    String(exited),
  ]);
  process.stderr.write(`${rows.at(-1)!.join(' | ')}\n`);
}

const head = ['scenario', 'operations', 'failed (count×status)', 'dropped', 'data lost', 'recovery s', 'nodes died'];
process.stdout.write(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n`);
for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);

await proxy.close();
await Promise.all(nodes.map((n) => n.stop()));
await db.destroy();
await server.destroy();
