/**
 * The load and the measurements of deploy/ha-test.sh (run by it; Node 24): logins, refreshes and client_credentials
 * grants through the front HAProxy, a fault command in the middle, and the report: failover time, client-visible
 * errors, requests lost, and committed data lost (every token the service reported issued must be in oidc_payloads
 * after the failover, read through HAProxy from the new primary).
 *
 * Meanwhile it polls every node's /readyz and every Patroni member's GET /primary, so the report says what each did
 * and when, and it summarises the nodes' warnings and errors from their logs. Loopback only; bounded in time: the
 * load stops once every operation has succeeded for --settle seconds after the fault, or at --deadline.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs, promisify } from 'node:util';
import { sql } from 'kysely';
import { verifyChain } from '../src/audit/index.ts';
import { connect } from '../src/db/index.ts';
import { countBy, issuedRowIds, type LoadTarget, type Outcome, startLoad } from '../test/helpers/load.ts';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string', default: 'http://localhost:3080' },
    portal: { type: 'string' }, // JSON printed by `dinhdanh clients add`
    service: { type: 'string' }, // same, for the --client-credentials service
    'redirect-uri': { type: 'string' },
    workers: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '15' },
    settle: { type: 'string', default: '10' },
    deadline: { type: 'string', default: '150' },
    fault: { type: 'string' }, // a bash command
    'fault-name': { type: 'string', default: 'fault' },
    nodes: { type: 'string', default: '' }, // comma-separated base URLs, for /readyz
    patroni: { type: 'string', default: '' }, // name=url,... of Patroni REST APIs
    logs: { type: 'string', default: '' }, // the nodes' log files (pino JSON lines)
  },
});
const need = (name: 'portal' | 'service' | 'redirect-uri' | 'fault') => {
  const v = args[name];
  if (!v) throw new Error(`--${name} is required`);
  return v;
};
const databaseUrl = process.env.DATABASE_URL;
const masterKey = process.env.MASTER_KEY;
if (!databaseUrl || !masterKey) throw new Error('DATABASE_URL and MASTER_KEY must be set (those of the nodes)');

const client = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { client_id: string; client_secret: string };
const portal = client(need('portal'));
const service = client(need('service'));
const target: LoadTarget = {
  issuer: args.issuer,
  nodes: [],
  portal: { clientId: portal.client_id, secret: portal.client_secret, redirectUri: need('redirect-uri') },
  service: { clientId: service.client_id, secret: service.client_secret },
};
const list = (s: string) => s.split(',').filter(Boolean);
const nodes = list(args.nodes);
const members = list(args.patroni).map((kv) => kv.split('=') as [string, string]);
const seconds = (ms: number) => (ms / 1000).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A watched state (a node's readiness, a member's role) and the times it changed. */
interface Watch {
  name: string;
  state: string;
  changes: { at: number; state: string }[];
}
const watches: Watch[] = [];
let watching = true;
async function watch(name: string, read: () => Promise<string>): Promise<void> {
  const w: Watch = { name, state: '', changes: [] };
  watches.push(w);
  while (watching) {
    const state = await read().catch(() => 'no answer');
    if (state !== w.state) {
      w.state = state;
      w.changes.push({ at: Date.now(), state });
    }
    await sleep(200);
  }
}
const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(1500) });
const watchers = [
  ...nodes.map((n, i) =>
    watch(`node${i + 1} /readyz`, async () => {
      const res = await get(`${n}/readyz`);
      const body = (await res.json().catch(() => ({}))) as { status?: string };
      return `${res.status} ${body.status ?? ''}`.trim();
    }),
  ),
  ...members.map(([name, url]) =>
    watch(`${name} GET /primary`, async () => {
      const res = await get(`${url}/primary`);
      const body = (await res.json().catch(() => ({}))) as { role?: string; state?: string };
      return `${res.status} ${body.role ?? ''} ${body.state ?? ''}`.trim();
    }),
  ),
];

// --- load, fault, until recovered -------------------------------------------------------------------------------------
const load = startLoad(target, { workers: Number(args.workers) });
await sleep(Number(args.warmup) * 1000); // load before the fault (a duration, not a synchronisation)
const faultAt = Date.now();
// Not synchronous: the load goes on while the command runs (it may wait, e.g. while the standby lags).
const fault = await promisify(execFile)('bash', ['-c', need('fault')]);
process.stderr.write(`${fault.stderr}[ha-load] fault fired: ${args['fault-name']}\n`);

const failed = (o: Outcome) => o.result !== 'ok';
const settleMs = Number(args.settle) * 1000;
const deadline = faultAt + Number(args.deadline) * 1000;
/** Recovered: some operation failed after the fault, and for settleMs since then every one has succeeded. */
function recovered(now: number): boolean {
  const after = load.tally.outcomes.filter((o) => o.at >= faultAt);
  const lastFailure = after.filter(failed).at(-1)?.at;
  const since = lastFailure ?? faultAt;
  // With no failure at all, wait as long as a failover may take (the leader key's ttl and a loop) before saying so.
  const quiet = lastFailure === undefined ? 45_000 : settleMs;
  return now - since >= quiet && after.some((o) => o.result === 'ok' && o.at > since);
}
while (!recovered(Date.now()) && Date.now() < deadline) await sleep(250);
const timedOut = Date.now() >= deadline;
const tally = await load.stop();
watching = false;
await Promise.all(watchers);

// --- what the clients saw ---------------------------------------------------------------------------------------------
const outcomes = [...tally.outcomes].sort((a, b) => a.at - b.at);
const firstError = outcomes.find((o) => o.at >= faultAt && failed(o));
const firstOkAfter = firstError && outcomes.find((o) => o.at > firstError.at && o.result === 'ok');
const lastError = outcomes.filter(failed).at(-1);
/** The front HAProxy's own 503 (no node in rotation) is told apart from a node's 503. */
const label = (o: Outcome) =>
  o.result === 503 && o.detail?.includes('no dinhdanh node is ready')
    ? '503 from HAProxy (no node ready)'
    : o.result === 'dropped'
      ? 'no HTTP answer'
      : `${o.result} from a node${o.detail?.includes('temporarily_unavailable') ? ' (temporarily_unavailable)' : ''}`;
const errors = new Map<string, number>();
for (const o of outcomes.filter(failed)) errors.set(label(o), (errors.get(label(o)) ?? 0) + 1);
const byOp = (op: Outcome['op']) => {
  const c = countBy(outcomes.filter((o) => o.op === op));
  return `${op} ${c.ok ?? 0} ok / ${outcomes.filter((o) => o.op === op).length}`;
};

// --- what was committed ------------------------------------------------------------------------------------------------
const db = connect(databaseUrl, 2);
const ids = await issuedRowIds(db, masterKey, tally);
const found = await sql<{ n: string }>`select count(*) as n from oidc_payloads where id = any(${ids})`.execute(db);
const lost = tally.issued.length - Number(found.rows[0]!.n);
const chain = await verifyChain(db);
const primaryNow = await sql<{ port: number }>`select inet_server_port() as port`.execute(db);
await db.destroy();

// --- what the nodes logged ---------------------------------------------------------------------------------------------
const logLines = new Map<string, number>();
for (const [i, file] of list(args.logs).entries()) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { level?: number; time?: number; msg?: string; err?: { code?: string } };
    if ((e.level ?? 0) < 40 || (e.time ?? 0) < faultAt) continue;
    const key = `${(e.level ?? 0) >= 50 ? 'error' : 'warn'} ${e.msg ?? '?'}${e.err?.code ? ` (${e.err.code})` : ''}`;
    logLines.set(`node${i + 1}: ${key}`, (logLines.get(`node${i + 1}: ${key}`) ?? 0) + 1);
  }
}

// --- the report ----------------------------------------------------------------------------------------------------------
const rel = (t: number) => `${t >= faultAt ? '+' : ''}${seconds(t - faultAt)} s`;
const out: string[] = [];
out.push(`fault: ${args['fault-name']} at ${new Date(faultAt).toISOString()} (times below are relative to it)`);
out.push(`operations: ${outcomes.length} (${byOp('login')}, ${byOp('refresh')}, ${byOp('client_credentials')})`);
out.push(
  firstError
    ? `failover seconds (first error to first success after it): ${seconds(firstOkAfter ? firstOkAfter.at - firstError.at : Number.NaN)}` +
        ` (first error ${rel(firstError.at)}, first success after ${firstOkAfter ? rel(firstOkAfter.at) : 'never'},` +
        ` last error ${rel(lastError!.at)})`
    : 'failover seconds: no client-visible error at all',
);
out.push(
  `client-visible errors: ${
    [...errors]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${v} × ${k}`)
      .join(', ') || 'none'
  }`,
);
if (firstError && lastError && errors.size) {
  const refused = outcomes.filter((o) => failed(o) && o.at >= firstError.at).length;
  const window = Math.max(1, lastError.at - firstError.at);
  const answered = outcomes.filter((o) => failed(o) && o.result !== 'dropped');
  const retryAfter = new Set(answered.filter((o) => o.retryAfter).map((o) => o.retryAfter));
  const withRetryAfter = answered.filter((o) => o.retryAfter).length;
  out.push(
    `  (the load's ${args.workers} workers go on at once after an error, without back-off: about ` +
      `${Math.round((refused * 1000) / window)} refused requests/s over ${seconds(window)} s; ` +
      `${withRetryAfter} of the ${answered.length} error answers carried Retry-After` +
      `${retryAfter.size ? ` (${[...retryAfter].join(', ')} s)` : ''}, which a real client waits out)`,
  );
}
out.push(
  `requests lost (sent, no HTTP answer): ${countBy(outcomes).dropped ?? 0}; ` +
    `requests refused (an HTTP error, safe to retry): ${outcomes.filter((o) => failed(o) && o.result !== 'dropped').length}`,
);
out.push(
  `committed data lost: ${lost} of ${tally.issued.length} tokens reported issued are missing from oidc_payloads ` +
    `(read through HAProxy from the primary now on port ${primaryNow.rows[0]!.port}); audit chain ${chain.ok ? 'intact' : 'BROKEN'}`,
);
const readiness = watches.filter((w) => w.name.endsWith('/readyz')).flatMap((w) => w.changes);
const firstUnready = readiness.find((c) => c.at >= faultAt && !c.state.startsWith('200'))?.at;
const allReady = watches
  .filter((w) => w.name.endsWith('/readyz'))
  .map((w) => w.changes.at(-1)!)
  .every((c) => c.state.startsWith('200'))
  ? Math.max(...watches.filter((w) => w.name.endsWith('/readyz')).map((w) => w.changes.at(-1)!.at))
  : undefined;
if (firstUnready)
  out.push(
    `nodes out of rotation: first /readyz 503 ${rel(firstUnready)}, all 200 again ${allReady ? rel(allReady) : 'never'}`,
  );
out.push('timeline:');
// Each watch's first state (before the fault), then every change from a second before it.
const events = watches
  .flatMap((w) =>
    w.changes
      .map((c, i) => ({ at: c.at, first: i === 0, text: `${w.name}: ${i === 0 ? '' : 'now '}${c.state}` }))
      .filter((c) => c.first || c.at >= faultAt - 1000),
  )
  .sort((a, b) => a.at - b.at);
for (const e of events) out.push(`  ${rel(e.at).padStart(9)}  ${e.text}`);
if (firstError) out.push(`  ${rel(firstError.at).padStart(9)}  first client-visible error: ${label(firstError)}`);
if (firstOkAfter) out.push(`  ${rel(firstOkAfter.at).padStart(9)}  first success after it (${firstOkAfter.op})`);
out.push(`node warnings and errors logged after the fault: ${logLines.size ? '' : 'none'}`);
for (const [k, v] of [...logLines].sort()) out.push(`  ${v} × ${k}`);
if (timedOut) out.push(`NOT RECOVERED within --deadline ${args.deadline} s`);
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = timedOut || lost > 0 || !chain.ok ? 1 : 0;
