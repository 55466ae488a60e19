/**
 * `node bench/idle.ts [--seconds 60] [--warmup 15] [--metrics on|off] [--tracing off|on] [--probe-every 0]
 * [--scrape-every 0] [--noise 0.15]`: what an idle dinhdanh node costs (issue 20, target 3: under 1% of a core).
 *
 * Starts `dinhdanh start` as a child process (test/helpers/process.ts, as bench/soak.ts does) on a fresh database:
 * the machine PostgreSQL when TEST_DATABASE_URL is set, else the embedded test server. With METRICS_PORT set (as a
 * production node runs; `--metrics off` leaves it unset), no traffic at all: nobody calls /readyz or /metrics during
 * the window, unless `--probe-every S` / `--scrape-every S` call them every S seconds as a load balancer and
 * Prometheus would. Waits until /readyz answers 200, lets the node warm up, then over the window reads:
 *
 * - the node's CPU: utime + stime of the whole process (every thread) from /proc/<pid>/stat, as a percent of one core,
 *   and per thread; its wakeups (context switches of all threads, /proc/<pid>/task/<tid>/status);
 * - the database's commits: `pg_stat_database.xact_commit` of the node's database, read from a connection to another
 *   database (so the reading itself does not count). PostgreSQL reports a backend's counters when it goes idle, at
 *   most once a second, and an idle backend's within 10 s: the count covers the window give or take 10 s of commits;
 * - which loops ran: each table's scans and written rows (`pg_stat_user_tables`, read at both ends from one connection
 *   to the node's database, whose own single read in the window is subtracted from the commits), and the statements
 *   the node's connections last ran, sampled from `pg_stat_activity` every 50 ms (pg_stat_statements is not loaded on
 *   the machine server: a statement run within 50 ms of the next one on its connection is not seen).
 *
 * Ends with a verdict line in bench/run.ts's form; a miss beyond `--noise` (relative) exits 1. Loopback only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freshDatabase } from '../test/helpers/db.ts';
import { freePort, startNode } from '../test/helpers/process.ts';
import { testEnv } from '../test/helpers/service.ts';
import { until } from '../test/helpers/wait.ts';
import { verdict } from './verdict.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '15' },
    metrics: { type: 'string', default: 'on' },
    // on: OpenTelemetry tracing loaded as bin/dinhdanh loads it, exporting to a loopback port nobody listens on.
    tracing: { type: 'string', default: 'off' },
    // As in production, where nobody signs in but a load balancer checks /readyz and Prometheus scrapes /metrics
    // (seconds between calls; 0: none, the default: a node nobody calls at all).
    'probe-every': { type: 'string', default: '0' },
    'scrape-every': { type: 'string', default: '0' },
    noise: { type: 'string', default: '0.15' },
  },
});
const windowMs = Number(args.seconds) * 1000;
const warmupMs = Number(args.warmup) * 1000;
/** The target: an idle node uses at most this percent of one core. */
const LIMIT_PERCENT = 1;
const CLOCK_TICKS = 100; // USER_HZ: /proc times are in 1/100 s on Linux

/** CPU ticks (user + system) of a process or one of its threads, from its stat line. */
function ticks(statPath: string): number {
  const f = readFileSync(statPath, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Per thread: name, CPU ticks and context switches (voluntary + involuntary: each is a sleep or a preemption). */
function threads(pid: number): Map<string, { name: string; ticks: number; switches: number }> {
  const out = new Map<string, { name: string; ticks: number; switches: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
      out.set(tid, {
        name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? tid,
        ticks: ticks(`/proc/${pid}/task/${tid}/stat`),
        switches: field('voluntary_ctxt_switches') + field('nonvoluntary_ctxt_switches'),
      });
    } catch {} // the thread ended meanwhile
  }
  return out;
}

/** Which background loop a table's activity or a statement belongs to (by the tables it touches). */
const LOOPS: [RegExp, string][] = [
  [/backchannel_outbox/, 'back-channel deliveries (worker, WORKER_INTERVAL_MS)'],
  [/session_terminations/, 'session terminations (worker, WORKER_INTERVAL_MS)'],
  [/signing|md5|service_secrets|advisory/, 'key watcher (KEY_CHECK_SECONDS)'],
  [/readiness_probe|kysely_migration/, 'readiness probe (on /readyz only)'],
  [/audit_events|audit_chain|audit_checkpoints/, 'audit writes'],
  [/oidc_payloads|oidc_sessions|session_devices/, 'purge of expired protocol rows (PURGE_INTERVAL_SECONDS)'],
  [/one_time_codes|codes|sms_outbox/, 'purge of codes and sent SMS (PURGE_INTERVAL_SECONDS)'],
  [/pg_inherits|pg_class|partition/, 'audit partitions (PURGE_INTERVAL_SECONDS)'],
  [/^LISTEN|^listen/, 'LISTEN (keys, clients)'],
];
const loopOf = (text: string) => LOOPS.find(([re]) => re.test(text))?.[1] ?? '?';

const database = await freshDatabase();
const serverUrl = new URL(database.url);
const dbName = serverUrl.pathname.slice(1);
serverUrl.pathname = '/postgres';
// Reads the node's database's counters from another database: these reads are no commits of the node's database.
const admin = new pg.Client({ connectionString: serverUrl.toString(), application_name: 'dinhdanh-bench-idle' });
await admin.connect();
// Reads the tables' counters at both ends of the window: one commit of the node's database in the window (its second
// read; each read is over a second after the previous one, so PostgreSQL reports it before answering).
const inside = new pg.Client({ connectionString: database.url, application_name: 'dinhdanh-bench-idle' });
await inside.connect();

const port = await freePort();
const metricsPort = args.metrics === 'on' ? await freePort() : 0;
const env = testEnv(database.url, {
  PORT: String(port),
  ISSUER: `http://localhost:${port}`,
  LOG_LEVEL: 'warn',
  ...(metricsPort ? { METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1' } : {}),
  ...(args.tracing === 'on'
    ? {
        NODE_OPTIONS: `--import ${path.resolve(import.meta.dirname, '../src/telemetry.ts')}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
      }
    : {}),
});
const node = await startNode(env);
const pid = node.child.pid!;

async function commits(): Promise<number> {
  const r = await admin.query('select xact_commit from pg_stat_database where datname = $1', [dbName]);
  return Number(r.rows[0].xact_commit);
}
async function tables(): Promise<Map<string, { scans: number; written: number }>> {
  const r = await inside.query(
    `select relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) as scans,
            n_tup_ins + n_tup_upd + n_tup_del as written from pg_stat_user_tables`,
  );
  return new Map(r.rows.map((x) => [String(x.relname), { scans: Number(x.scans), written: Number(x.written) }]));
}

try {
  await until(
    'the node is ready',
    async () => (await fetch(`http://localhost:${port}/readyz`).catch(() => null))?.status === 200,
    60_000,
  );
  await tables(); // the inside connection's first read, long before the window's
  // Warm-up: start-up work (first key loads, JIT, the pool's connections) ends before the window starts.
  await new Promise((r) => setTimeout(r, warmupMs));

  const t0 = performance.now();
  const tables0 = await tables();
  const commits0 = await commits();
  const cpu0 = ticks(`/proc/${pid}/stat`);
  const threads0 = threads(pid);
  const seen = new Map<string, number>(); // statement text -> times seen starting
  const lastStart = new Map<number, string>(); // backend pid -> query_start last seen
  // The callers a production node has even when nobody signs in (off by default).
  const callers = [
    [Number(args['probe-every']), `http://localhost:${port}/readyz`],
    [metricsPort ? Number(args['scrape-every']) : 0, `http://127.0.0.1:${metricsPort}/metrics`],
  ] as const;
  const timers = callers
    .filter(([every]) => every > 0)
    .map(([every, url]) =>
      setInterval(
        () =>
          void fetch(url).then(
            (r) => r.arrayBuffer(),
            () => {},
          ),
        every * 1000,
      ),
    );
  while (performance.now() - t0 < windowMs) {
    const r = await admin.query(
      `select pid, application_name, query, query_start from pg_stat_activity
       where datname = $1 and application_name like 'dinhdanh%' and application_name <> 'dinhdanh-bench-idle'`,
      [dbName],
    );
    for (const a of r.rows) {
      const start = String(a.query_start);
      if (lastStart.get(a.pid) === start) continue;
      const first = lastStart.has(a.pid);
      lastStart.set(a.pid, start);
      if (!first) continue; // the statement it ran before the window
      const text = `${a.application_name}: ${String(a.query).replace(/\s+/g, ' ').slice(0, 90)}`;
      seen.set(text, (seen.get(text) ?? 0) + 1);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const t of timers) clearInterval(t);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = ticks(`/proc/${pid}/stat`);
  const threads1 = threads(pid);
  const commits1 = await commits();
  const tables1 = await tables();
  const ownReads = 1;

  const percent = Math.round(((cpu1 - cpu0) / CLOCK_TICKS / seconds) * 1000) / 10;
  const commitsPerSecond = Math.round(((commits1 - commits0 - ownReads) / seconds) * 100) / 100;
  const load = os.loadavg().map((x) => x.toFixed(2));
  const lines: string[] = [];
  lines.push(
    `Idle node ${new Date().toISOString()}: ${Math.round(seconds)} s after ${warmupMs / 1000} s of warm-up, ` +
      `metrics ${args.metrics}, tracing ${args.tracing}, /readyz every ${args['probe-every']} s, /metrics every ` +
      `${args['scrape-every']} s, ${process.env.TEST_DATABASE_URL ? 'machine' : 'embedded'} PostgreSQL, ` +
      `load average ${load.join(' ')}`,
    '',
    '| node CPU % of a core | commits/s | wakeups/s (all threads) |',
    '|---|---|---|',
  );
  let switches = 0;
  const perThread: { name: string; ms: number; wakeups: number }[] = [];
  for (const [tid, t] of threads1) {
    const before = threads0.get(tid) ?? { ticks: 0, switches: 0 };
    switches += t.switches - before.switches;
    perThread.push({
      name: `${t.name} (${tid})`,
      ms: ((t.ticks - before.ticks) * 1000) / CLOCK_TICKS,
      wakeups: t.switches - before.switches,
    });
  }
  lines.push(`| ${percent} | ${commitsPerSecond} | ${Math.round(switches / seconds)} |`, '');
  lines.push('| thread | CPU ms | wakeups/s |', '|---|---|---|');
  for (const t of perThread
    .filter((x) => x.ms > 0 || x.wakeups > 0)
    .sort((a, b) => b.ms - a.ms || b.wakeups - a.wakeups))
    lines.push(`| ${t.name} | ${t.ms} | ${Math.round((t.wakeups / seconds) * 10) / 10} |`);
  lines.push('', '| table | scans/min | rows written/min | loop |', '|---|---|---|---|');
  for (const [name, after] of tables1) {
    const before = tables0.get(name) ?? { scans: 0, written: 0 };
    const scans = after.scans - before.scans;
    const written = after.written - before.written;
    if (!scans && !written) continue;
    const perMin = (n: number) => Math.round((n / seconds) * 60 * 10) / 10;
    lines.push(`| ${name} | ${perMin(scans)} | ${perMin(written)} | ${loopOf(name)} |`);
  }
  lines.push('', '| statements seen (last of a burst, sampled every 50 ms) | per min | loop |', '|---|---|---|');
  for (const [text, n] of [...seen].sort((a, b) => b[1] - a[1]))
    lines.push(`| ${text.replaceAll('|', '\\|')} | ${Math.round((n / seconds) * 60 * 10) / 10} | ${loopOf(text)} |`);

  // The verdict, in bench/run.ts's form: met, missed within the noise, or missed (exit 1).
  const outcome = verdict(percent, LIMIT_PERCENT, 'lower', Number(args.noise));
  lines.push('', `target idle node: ${percent} (at most ${LIMIT_PERCENT}): ${outcome}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (outcome === 'missed') process.exitCode = 1;
} finally {
  await node.stop();
  await inside.end();
  await admin.end();
  await database.drop();
}
