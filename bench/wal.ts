/**
 * `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node bench/wal.ts [-- --logins 300 --refreshes 1000
 * --accounts 100000 --events 100000]`: what PostgreSQL writes per operation and stores per row, for docs/capacity.md.
 *
 * - Per operation (a first login with consent and a refresh token; a returning login, consent remembered; a refresh;
 *   userinfo and introspection with the refreshed access token):
 *   one node in this process on a fresh database, operations one after the other; the database's
 *   `pg_stat_database` counters (tuples inserted/updated/deleted, commits) and the WAL its transactions wrote
 *   (pg_walinspect over the LSN range, only records of this database or of its transactions: other databases on the
 *   server do not count) are read before and after, and the node's idle background work over the same time is
 *   subtracted.
 * - Storage: `--accounts` generated residents with level-1 accounts, and `--events` audit events copied from the
 *   real ones the runs above wrote (subjects and times made distinct, so indexes are not deduplicated unfairly),
 *   measured with pg_total_relation_size and scaled to a million.
 * Needs the pg_walinspect extension (PostgreSQL 15+, in postgresql-contrib); the database is dropped at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { recordEvent } from '../src/audit/index.ts';
import { addClient } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { connect } from '../src/db/index.ts';
import { startService } from '../src/main.ts';
import { generateResidents, insertResidents } from '../src/registry/index.ts';
import { Agent, actionOf, csrfOf } from '../test/helpers/agent.ts';
import { freshDatabase } from '../test/helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from '../test/helpers/flow.ts';
import { testEnv } from '../test/helpers/service.ts';

const { values: args } = parseArgs({
  options: {
    logins: { type: 'string', default: '300' },
    refreshes: { type: 'string', default: '1000' },
    accounts: { type: 'string', default: '100000' },
    events: { type: 'string', default: '100000' },
    'audit-seconds': { type: 'string', default: '10' },
  },
});
if (!process.env.TEST_DATABASE_URL) throw new Error('set TEST_DATABASE_URL (the machine PostgreSQL)');
const REDIRECT = 'http://localhost:4711/cb';
/** PostgreSQL flushes a backend's counters at most every second, and an idle one's within 10 s. */
const STATS_FLUSH_MS = 11_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const database = await freshDatabase();
const admin = new pg.Client({ connectionString: database.url });
await admin.connect();
await admin.query('create extension if not exists pg_walinspect');
const dataDir = String(
  (await admin.query("select setting from pg_settings where name = 'data_directory'")).rows[0].setting,
);
const dbOid = Number((await admin.query('select oid from pg_database where datname = current_database()')).rows[0].oid);

const service = await startService(
  loadConfig(testEnv(database.url, { LOG_LEVEL: 'silent', LOGIN_MAX_FAILURES: '100', LOGIN_IP_FAILURES: '1000000' })),
);
const portal = await addClient(service.db, { name: 'Cổng đo', redirectUris: [REDIRECT] });
const basic = `Basic ${Buffer.from(`${portal.client_id}:${portal.client_secret}`).toString('base64')}`;

/**
 * CPU seconds of the PostgreSQL server so far (its processes, and the children it has reaped), when it runs on this
 * machine; null otherwise. Only meaningful on a server of one's own: on a shared one others' work counts too.
 */
const postmaster = (() => {
  try {
    return Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
})();
function pgCpuSeconds(): number | null {
  if (!postmaster) return null;
  const fields = (pid: number | string) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
  };
  try {
    const own = fields(postmaster);
    let ticks = own[11]! + own[12]! + own[13]! + own[14]!;
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const f = fields(pid);
        if (f[1] === postmaster) ticks += f[11]! + f[12]!;
      } catch {} // ended meanwhile
    }
    return ticks / 100; // USER_HZ
  } catch {
    return null;
  }
}

/** Counters of this database. */
async function counters() {
  const r = await admin.query(
    `select tup_inserted, tup_updated, tup_deleted, xact_commit, pg_current_wal_flush_lsn() as lsn, clock_timestamp() as t
     from pg_stat_database where datname = current_database()`,
  );
  const x = r.rows[0];
  return {
    inserted: Number(x.tup_inserted),
    updated: Number(x.tup_updated),
    deleted: Number(x.tup_deleted),
    commits: Number(x.xact_commit),
    lsn: String(x.lsn),
    t: new Date(x.t).getTime(),
    cpu: pgCpuSeconds() ?? Number.NaN,
  };
}

/** WAL written between two LSNs by this database: its transactions' records and its own xid-less records (hints). */
async function walBytes(from: string, to: string) {
  const r = await admin.query(
    `with w as (select * from pg_get_wal_records_info($1, $2)),
          ours as (select distinct xid from w where xid <> '0' and block_ref ~ ('rel \\d+/' || $3 || '/'))
     select count(*)::bigint as records, coalesce(sum(record_length), 0)::bigint as bytes,
            coalesce(sum(fpi_length), 0)::bigint as fpi,
            count(*) filter (where resource_manager = 'Transaction' and record_type like 'COMMIT%')::bigint as commits
     from w where xid in (select xid from ours) or (xid = '0' and block_ref ~ ('rel \\d+/' || $3 || '/'))`,
    [from, to, String(dbOid)],
  );
  const x = r.rows[0];
  return { records: Number(x.records), bytes: Number(x.bytes), fpi: Number(x.fpi), commits: Number(x.commits) };
}

async function token(form: Record<string, string>) {
  const res = await fetch(`${service.url}/token`, {
    method: 'POST',
    body: new URLSearchParams(form).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return (await res.json()) as { access_token: string; refresh_token?: string };
}

/** A full login in a new browser: authorize, password, consent when asked, code exchange. */
async function login(first: boolean): Promise<string | undefined> {
  const agent = new Agent();
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${service.url}/auth`);
  auth.search = new URLSearchParams({
    client_id: portal.client_id,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: first ? 'openid profile offline_access' : 'openid profile',
    ...(first ? { prompt: 'consent' } : {}),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
  }).toString();
  let url = auth.toString();
  for (let hop = 0; hop < 12; hop++) {
    if (url.startsWith(REDIRECT)) {
      const code = new URL(url).searchParams.get('code');
      if (!code) throw new Error(url);
      const t = await token({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
      });
      return t.refresh_token;
    }
    const res = await agent.get(url);
    if (res.status === 302 || res.status === 303) {
      url = new URL(res.headers.get('location')!, url).toString();
      continue;
    }
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
    const html = await res.text();
    const step = /\/login"/.test(html) ? 'login' : 'consent';
    const form: Record<string, string> = step === 'login' ? { pin: DEMO_PIN, password: DEMO_PASSWORD } : {};
    const next = await agent.post(new URL(actionOf(html, step), url), { csrf: csrfOf(html), ...form });
    if (next.status !== 302 && next.status !== 303) throw new Error(`${step}: ${next.status}`);
    url = new URL(next.headers.get('location')!, url).toString();
  }
  throw new Error('no code');
}

/**
 * The WAL this database writes, read every half second while `run` runs: the server recycles segments quickly when
 * other databases write a lot (a CREATE DATABASE copies its template into the WAL), so a range read once at the end
 * may already be gone.
 */
async function walWhile(run: () => Promise<void>, from: string) {
  const total = { records: 0, bytes: 0, fpi: 0, commits: 0 };
  let at = from;
  const step = async () => {
    const r = await admin.query('select l, pg_wal_lsn_diff(l, $1) as d from pg_current_wal_flush_lsn() l', [at]);
    if (Number(r.rows[0].d) <= 0) return;
    const to = String(r.rows[0].l);
    const w = await walBytes(at, to);
    total.records += w.records;
    total.bytes += w.bytes;
    total.fpi += w.fpi;
    total.commits += w.commits;
    at = to;
  };
  let running = true;
  const sampler = (async () => {
    while (running) {
      await step();
      await sleep(500);
    }
  })();
  try {
    await run();
  } finally {
    running = false;
    await sampler;
  }
  await step();
  return { total, at };
}

/** Counters and WAL over a stretch of time (after the counters of the work before it have been flushed). */
async function window(run: () => Promise<void>) {
  await sleep(STATS_FLUSH_MS);
  const a = await counters();
  const { total: wal } = await walWhile(async () => {
    await run();
    await sleep(STATS_FLUSH_MS);
  }, a.lsn);
  const b = await counters();
  return { a, b, wal };
}

// The node's own background (timers, workers, purge): its rate per second, subtracted from every measurement.
await login(true); // warm-up: the demo citizen's grant exists, caches are filled
const idleRun = await window(async () => {
  await sleep(20_000);
});
const idleSeconds = (idleRun.b.t - idleRun.a.t) / 1000;
const idle = {
  inserted: (idleRun.b.inserted - idleRun.a.inserted) / idleSeconds,
  updated: (idleRun.b.updated - idleRun.a.updated) / idleSeconds,
  deleted: (idleRun.b.deleted - idleRun.a.deleted) / idleSeconds,
  commits: (idleRun.b.commits - idleRun.a.commits) / idleSeconds,
  wal: idleRun.wal.bytes / idleSeconds,
  writes: idleRun.wal.commits / idleSeconds,
  cpu: (idleRun.b.cpu - idleRun.a.cpu) / idleSeconds,
};

const rows: string[] = [];
async function measure(name: string, n: number, op: () => Promise<void>) {
  const w = await window(async () => {
    for (let i = 0; i < n; i++) await op();
  });
  const s = (w.b.t - w.a.t) / 1000;
  const per = (k: 'inserted' | 'updated' | 'deleted' | 'commits') => (w.b[k] - w.a[k] - idle[k] * s) / n;
  const wal = (w.wal.bytes - idle.wal * s) / n;
  const writes = (w.wal.commits - idle.writes * s) / n;
  const cpuMs = ((w.b.cpu - w.a.cpu - idle.cpu * s) * 1000) / n;
  rows.push(
    `| ${name} | ${n} | ${per('inserted').toFixed(1)} | ${per('updated').toFixed(1)} | ${per('deleted').toFixed(1)} | ${per('commits').toFixed(1)} | ${writes.toFixed(1)} | ${Math.round(wal)} | ${Math.round(w.wal.fpi / n)} | ${(w.wal.records / n).toFixed(1)} | ${cpuMs.toFixed(2)} |`,
  );
  process.stderr.write(`${rows.at(-1)}\n`);
}

const logins = Number(args.logins);
let refresh: string | undefined;
await measure('first login (consent, refresh token)', logins, async () => {
  refresh = await login(true);
});
await measure('returning login (consent remembered)', logins, async () => {
  await login(false);
});
let access = '';
await measure('refresh', Number(args.refreshes), async () => {
  const t = await token({ grant_type: 'refresh_token', refresh_token: refresh! });
  refresh = t.refresh_token ?? refresh;
  access = t.access_token;
});
// The read-only endpoints (candidates for a read replica): the portal's own access token.
const ok = async (res: Response) => {
  if (res.status !== 200) throw new Error(`${res.url}: ${res.status}`);
  await res.arrayBuffer();
};
await measure('userinfo', Number(args.refreshes), async () => {
  await ok(await fetch(`${service.url}/me`, { headers: { authorization: `Bearer ${access}` } }));
});
await measure('introspection', Number(args.refreshes), async () => {
  await ok(
    await fetch(`${service.url}/token/introspection`, {
      method: 'POST',
      body: new URLSearchParams({ token: access }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
    }),
  );
});

// Live OIDC rows after the runs (sessions, grants, tokens; expired ones are purged every 5 minutes).
const payloads = await admin.query(
  `select model, count(*)::int as n, round(avg(pg_column_size(p.*)))::int as bytes from oidc_payloads p
   group by model order by model`,
);
const payloadTotal = await admin.query(
  `select pg_total_relation_size('oidc_payloads') as total, (select count(*) from oidc_payloads)::int as n`,
);

await service.close();

// The audit chain's ceiling: every direct append (a login's own event) takes one advisory lock, reads the last link,
// inserts and commits while holding it, so appends are serialized across all nodes. Workers on their own connections
// append as fast as they can, one transaction per event (token events are batched by a queue and cost less).
const appendRows: string[] = [];
for (const workers of [1, 4, 16]) {
  const pool = connect(database.url, workers);
  const until = Date.now() + Number(args['audit-seconds']) * 1000;
  let events = 0;
  const cpu0 = pgCpuSeconds() ?? Number.NaN;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (Date.now() < until) {
        await recordEvent(pool, { actor: { type: 'system' }, action: 'bench.append', outcome: 'success' });
        events++;
      }
    }),
  );
  const s = (Date.now() - t0) / 1000;
  const cpu = ((pgCpuSeconds() ?? Number.NaN) - cpu0) / s;
  appendRows.push(`| ${workers} | ${Math.round(events / s)} | ${cpu.toFixed(2)} |`);
  process.stderr.write(`${appendRows.at(-1)}\n`);
  await pool.destroy();
}

// Storage: residents and accounts (generated, as the population database would hold them), scaled to a million.
const store = connect(database.url, 2);
const size = async (table: string) => {
  await admin.query(`vacuum analyze ${table}`);
  const r = await admin.query(
    `select pg_relation_size($1) as heap, pg_indexes_size($1) as idx, pg_total_relation_size($1) as total,
            (select count(*) from ${table})::int as n`,
    [table],
  );
  return { heap: Number(r.rows[0].heap), idx: Number(r.rows[0].idx), total: Number(r.rows[0].total), n: r.rows[0].n };
};
type Size = Awaited<ReturnType<typeof size>>;
const storage: string[] = [];
const perMillion = (name: string, a: Size, b: Size) => {
  const n = b.n - a.n;
  const mib = (x: number) => ((x * 1_000_000) / n / 1048576).toFixed(0);
  storage.push(
    `| ${name} | ${n} | ${mib(b.heap - a.heap)} | ${mib(b.idx - a.idx)} | ${mib(b.total - a.total)} | ${Math.round((b.total - a.total) / n)} |`,
  );
  process.stderr.write(`${storage.at(-1)}\n`);
};
const hash = (await admin.query('select password_hash from accounts limit 1')).rows[0].password_hash as string;
const r0 = await size('residents');
const a0 = await size('accounts');
let batch: Parameters<typeof insertResidents>[1] = [];
for (const r of generateResidents(Number(args.accounts), 4242)) {
  batch.push(r);
  if (batch.length === 2000) {
    await insertResidents(store, batch);
    batch = [];
  }
}
await insertResidents(store, batch);
await admin.query(
  `insert into accounts (resident_id, password_hash)
   select r.id, $1 from residents r left join accounts a on a.resident_id = r.id where a.id is null`,
  [hash],
);
perMillion('residents', r0, await size('residents'));
perMillion('accounts (level 1)', a0, await size('accounts'));

// Storage: audit events, copied from the real ones above into a table of the same shape and indexes.
await admin.query('create table audit_copy (like audit_events including defaults including indexes)');
const e0 = await size('audit_copy');
const events = Number(args.events);
await admin.query(
  `insert into audit_copy (seq, at, actor_type, actor_id, action, subject, client_id, ip, user_agent, outcome, reason,
                           details, prev_hash, hash)
   select e.seq + i * 1000000, e.at + i * interval '1 ms', e.actor_type, e.actor_id, e.action,
          case when e.subject is null then null else left(repeat(md5(i::text || e.subject), 3), length(e.subject)) end,
          e.client_id, e.ip, e.user_agent, e.outcome, e.reason, e.details, e.prev_hash, e.hash
   from audit_events e, generate_series(1, ceil($1::numeric / (select count(*) from audit_events where action <> 'bench.append'))::int) i
   where e.action <> 'bench.append'
   limit $1`,
  [events],
);
perMillion('audit events', e0, await size('audit_copy'));
const actions = await admin.query(
  `select action, count(*)::int as n, round(avg(pg_column_size(e.*)))::int as bytes from audit_events e
   where action <> 'bench.append' group by action order by n desc limit 12`,
);
await store.destroy();
await admin.end();
await database.drop();

const out = process.stdout;
out.write(`Run ${new Date().toISOString()} on database ${dbOid}; idle background subtracted: `);
out.write(`${idle.commits.toFixed(1)} commits/s, ${Math.round(idle.wal)} WAL bytes/s.\n\n`);
out.write(
  '| operation | n | tuples inserted | updated | deleted | transactions | writing transactions | WAL bytes | of which full-page images | WAL records | PostgreSQL CPU ms |\n',
);
out.write('|---|---|---|---|---|---|---|---|---|---|---|\n');
out.write(`${rows.join('\n')}\n\n`);
out.write(
  '| table | rows added | heap MiB per million | indexes MiB per million | total MiB per million | bytes per row |\n',
);
out.write('|---|---|---|---|---|---|\n');
out.write(`${storage.join('\n')}\n\n`);
out.write(
  `oidc_payloads after the runs: ${payloadTotal.rows[0].n} rows, ${payloadTotal.rows[0].total} bytes in all\n\n`,
);
out.write('| model | rows | average row bytes |\n|---|---|---|\n');
for (const p of payloads.rows) out.write(`| ${p.model} | ${p.n} | ${p.bytes} |\n`);
out.write('\n| audit append workers | events/s (one transaction each) | PostgreSQL cores busy |\n');
out.write(`|---|---|---|\n${appendRows.join('\n')}\n`);
out.write('\n| audit action | events | average row bytes |\n|---|---|---|\n');
for (const a of actions.rows) out.write(`| ${a.action} | ${a.n} | ${a.bytes} |\n`);
