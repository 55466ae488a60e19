/**
 * The audit trail and the purges at scale, against a scratch database (never a real one: it appends synthetic events
 * and inserts expired rows). DATABASE_URL names the database; it is migrated first. Results as JSON on stdout.
 *
 *   node bench/audit-scale.ts generate --rows 10000000 [--months 6]   append a valid chain of synthetic events,
 *        spread evenly over the last --months months (partitions created for them), by COPY, hashes computed here
 *   node bench/audit-scale.ts plans        EXPLAIN ANALYZE of the newest-link lookup and a verify page; append timing
 *   node bench/audit-scale.ts purge --rows 1000000   expired oidc_payloads, verification codes and outbox messages,
 *        purged by the service's own functions while a probe on another connection measures the longest wait
 *   node bench/audit-scale.ts lookups [--rows 1000] [--accounts 1000000]   after `registry import`: the registry
 *        lookups of login (account by personal ID) and enrollment (resident by personal ID) with random PINs, half
 *        of them unknown, --accounts accounts created first for a realistic join; p50/p99 and plans
 *
 * `audit verify` itself is measured with the CLI under /usr/bin/time -v (see docs/scale.md).
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { selectLoginRecord } from '../src/accounts/accounts.repository.ts';
import { deleteExpiredCodes } from '../src/accounts/index.ts';
import { chainHash, GENESIS } from '../src/audit/chain.ts';
import { recordEvent } from '../src/audit/index.ts';
import { createMonthPartitions, monthStart } from '../src/audit/partitions.repository.ts';
import { connect, type DB, migrateToLatest } from '../src/db/index.ts';
import { purgeExpired } from '../src/oidc/index.ts';
import { findResident } from '../src/registry/index.ts';
import { purgeOutbox } from '../src/sms/index.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    rows: { type: 'string' },
    months: { type: 'string', default: '6' },
    accounts: { type: 'string', default: '1000000' },
  },
});
const mode = positionals[0] ?? 'generate';
const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL to a scratch database');
const log = (line: string) => process.stderr.write(`${line}\n`);
const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** COPY text format: backslash, tab, newline and carriage return escaped; null as \N. */
const field = (v: string | null) =>
  v === null ? '\\N' : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');

const ACTIONS = ['login', 'token.issued', 'consent.granted', 'login.failed', 'logout', 'otp.verified'];

/** Appends `rows` chained events after the current last link, `at` spread over the last `months` months. */
async function generate(db: Kysely<DB>, rows: number, months: number) {
  const now = new Date();
  const start = monthStart(now, -(months - 1));
  await createMonthPartitions(db, start, months + 2);
  const last = await sql<{ seq: string; hash: string }>`
    select seq, hash from audit_events order by seq desc limit 1`.execute(db);
  const cp = await sql<{ seq: string; hash: string }>`
    select seq, hash from audit_checkpoints order by seq desc limit 1`.execute(db);
  let seq = Number(last.rows[0]?.seq ?? cp.rows[0]?.seq ?? 0);
  let prev = last.rows[0]?.hash ?? cp.rows[0]?.hash ?? GENESIS;
  const step = (now.getTime() - 60_000 - start.getTime()) / rows;

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const t0 = performance.now();
  const copy = client.query(
    copyFrom(`copy audit_events (seq, at, actor_type, actor_id, action, subject, client_id, ip, user_agent, outcome,
      reason, details, prev_hash, hash) from stdin`),
  );
  const done = new Promise<void>((resolve, reject) => {
    copy.on('finish', resolve);
    copy.on('error', reject);
  });
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    seq++;
    const action = ACTIONS[i % ACTIONS.length]!;
    const failed = action === 'login.failed';
    const content = {
      seq,
      at: new Date(start.getTime() + Math.floor(i * step)),
      actorType: 'citizen',
      actorId: null,
      action,
      subject: `acct-${(i * 7919) % 1_000_000}`,
      clientId: `portal-${i % 40}`,
      ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      userAgent: 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile',
      outcome: failed ? 'failure' : 'success',
      reason: failed ? 'wrong_password' : null,
      details: failed ? { device: 'unknown' } : { acr: 'urn:dinhdanh:loa:1', amr: ['pwd'] },
    };
    const hash = chainHash(prev, content);
    chunk += `${[
      String(seq),
      content.at.toISOString(),
      content.actorType,
      field(content.actorId),
      content.action,
      content.subject,
      content.clientId,
      content.ip,
      content.userAgent,
      content.outcome,
      field(content.reason),
      field(JSON.stringify(content.details)),
      prev,
      hash,
    ].join('\t')}\n`;
    prev = hash;
    if (chunk.length > 1 << 20) {
      if (!copy.write(chunk)) await once(copy, 'drain');
      chunk = '';
    }
    if ((i + 1) % 1_000_000 === 0) log(`${i + 1} rows, ${Math.round((i + 1) / seconds(t0))} rows/s`);
  }
  copy.end(chunk);
  await done;
  const copySeconds = seconds(t0);
  await client.query('analyze audit_events');
  await client.end();
  const size = await sql<{ bytes: string }>`
    select sum(pg_total_relation_size(inhrelid))::bigint as bytes from pg_inherits
    where inhparent = 'audit_events'::regclass`.execute(db);
  process.stdout.write(
    `${JSON.stringify(
      {
        rows,
        lastSeq: seq,
        seconds: Number(copySeconds.toFixed(1)),
        rowsPerSecond: Math.round(rows / copySeconds),
        tableAndIndexesGB: Number((Number(size.rows[0]!.bytes) / 1e9).toFixed(2)),
      },
      null,
      2,
    )}\n`,
  );
}

/** EXPLAIN ANALYZE of the queries that must stay fast whatever the size; append latency over 200 appends. */
async function plans(db: Kysely<DB>) {
  const explain = async (title: string, query: string) => {
    const { rows } = await sql
      .raw<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${query}`)
      .execute(db);
    log(`--- ${title}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
  };
  const { rows } = await sql<{ seq: string }>`select seq from audit_events order by seq desc limit 1`.execute(db);
  const middle = Math.floor(Number(rows[0]?.seq ?? 0) / 2);
  await explain('newest link (every append)', 'select seq, hash from audit_events order by seq desc limit 1');
  await explain(
    'one verify page (keyset, middle of the chain)',
    `select * from audit_events where seq > ${middle} order by seq limit 1000`,
  );
  await explain(
    "a subject's newest events",
    `select * from audit_events where subject = 'acct-4242' order by seq desc limit 20`,
  );
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await recordEvent(db, { actor: { type: 'system' }, action: 'bench.append', outcome: 'success' });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const ms = (q: number) => Number(times[Math.floor(q * (times.length - 1))]!.toFixed(2));
  process.stdout.write(`${JSON.stringify({ appendMs: { p50: ms(0.5), p99: ms(0.99), max: ms(1) } }, null, 2)}\n`);
}

/**
 * Inserts `rows` expired rows in each purged table, then runs the service's purges while a probe on another
 * connection inserts and deletes a live row in each table every 5 ms: its slowest round is the longest any writer
 * waited on the purge.
 */
async function purge(db: Kysely<DB>, rows: number) {
  const resident = await sql<{ id: string }>`select id from residents limit 1`.execute(db);
  if (!resident.rows[0]) throw new Error('no resident to attach verification codes to: import or seed residents first');
  const rid = resident.rows[0].id;
  const t0 = performance.now();
  await sql`insert into oidc_payloads (model, id, payload, expires_at)
    select 'AccessToken', 'bench-' || g, '{}'::jsonb, now() - interval '1 hour' from generate_series(1, ${rows}) g`.execute(
    db,
  );
  await sql`insert into verification_codes (purpose, resident_id, code_hash, expires_at)
    select 'enroll', ${rid}, md5(g::text), now() - interval '2 days' from generate_series(1, ${rows}) g`.execute(db);
  await sql`insert into sms_outbox (to_phone, purpose, body, created_at)
    select '+84900000000', 'enroll', 'code', now() - interval '2 days' from generate_series(1, ${rows}) g`.execute(db);
  await sql`analyze oidc_payloads, verification_codes, sms_outbox`.execute(db);
  log(`inserted ${rows} expired rows in each table in ${seconds(t0).toFixed(1)} s`);

  const probeDb = connect(url!, 1);
  let stop = false;
  const waits: number[] = [];
  const probe = (async () => {
    while (!stop) {
      const p0 = performance.now();
      const id = randomUUID();
      await probeDb.transaction().execute(async (trx) => {
        await sql`insert into oidc_payloads (model, id, payload, expires_at)
          values ('AccessToken', ${id}, '{}', now() + interval '1 hour')`.execute(trx);
        await sql`delete from oidc_payloads where model = 'AccessToken' and id = ${id}`.execute(trx);
        await sql`insert into verification_codes (purpose, resident_id, code_hash, expires_at)
          values ('enroll', ${rid}, ${id}, now() + interval '5 minutes')`.execute(trx);
        await sql`delete from verification_codes where code_hash = ${id}`.execute(trx);
        await sql`insert into sms_outbox (to_phone, purpose, body) values ('+84900000001', 'enroll', ${id})`.execute(
          trx,
        );
      });
      waits.push(performance.now() - p0);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const result: Record<string, unknown> = {};
  for (const [name, run] of [
    ['oidc_payloads (purgeExpired)', () => purgeExpired(db)],
    ['verification_codes (deleteExpiredCodes)', () => deleteExpiredCodes(db)],
    ['sms_outbox (purgeOutbox)', () => purgeOutbox(db)],
  ] as const) {
    waits.length = 0;
    const p0 = performance.now();
    const n = await run();
    const s = seconds(p0);
    const sorted = [...waits].sort((a, b) => a - b);
    result[name] = {
      deleted: n,
      seconds: Number(s.toFixed(1)),
      rowsPerSecond: Math.round(n / s),
      batches: Math.ceil(n / 1000),
      probeRounds: sorted.length,
      probeP50Ms: Number((sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(2)),
      probeMaxMs: Number((sorted.at(-1) ?? 0).toFixed(2)),
    };
    log(`${name}: ${JSON.stringify(result[name])}`);
  }
  stop = true;
  await probe;
  await sql`delete from sms_outbox where to_phone = '+84900000001'`.execute(probeDb);
  await probeDb.destroy();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/** Milliseconds at quantile `q` of sorted `times`. */
const at = (times: number[], q: number) => Number(times[Math.floor(q * (times.length - 1))]!.toFixed(3));

/** The registry lookups a login and an enrollment make, `n` times each with random PINs (half unknown). */
async function lookups(db: Kysely<DB>, n: number, accounts: number) {
  const have = await sql<{ n: number }>`select count(*)::int as n from accounts`.execute(db);
  if (have.rows[0]!.n < accounts) {
    const t0 = performance.now();
    await sql`insert into accounts (resident_id, password_hash)
      select id, 'bench' from residents r where not exists (select 1 from accounts a where a.resident_id = r.id)
      limit ${accounts - have.rows[0]!.n}`.execute(db);
    await sql`analyze accounts`.execute(db);
    log(`accounts created up to ${accounts} in ${seconds(t0).toFixed(1)} s`);
  }
  const known = await sql<{ pin: string }>`
    select pin from residents tablesample system (1) order by random() limit ${Math.ceil(n / 2)}`.execute(db);
  const pins = known.rows.map((r) => r.pin);
  while (pins.length < n) pins.push(String(Math.floor(Math.random() * 1e12)).padStart(12, '0'));
  pins.sort(() => Math.random() - 0.5);
  const result: Record<string, unknown> = {};
  for (const [name, run] of [
    ['login: account by personal ID (selectLoginRecord)', (pin: string) => selectLoginRecord(db, pin)],
    ['enrollment: resident by personal ID (findResident)', (pin: string) => findResident(db, { pin })],
  ] as const) {
    for (const pin of pins.slice(0, 50)) await run(pin); // warm the pool and the prepared plans
    const times: number[] = [];
    let found = 0;
    for (const pin of pins) {
      const t0 = performance.now();
      if (await run(pin)) found++;
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    result[name] = { lookups: n, found, p50Ms: at(times, 0.5), p99Ms: at(times, 0.99), maxMs: at(times, 1) };
  }
  const pin = pins.find(Boolean)!;
  for (const query of [
    `select a.id, a.password_hash, a.level, a.status, r.status from accounts a join residents r on r.id = a.resident_id where r.pin = '${pin}'`,
    `select * from residents where pin = '${pin}'`,
  ]) {
    const { rows } = await sql.raw<{ 'QUERY PLAN': string }>(`explain (analyze, costs off) ${query}`).execute(db);
    log(`--- ${query}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

const db = connect(url, 4);
await migrateToLatest(db);
try {
  if (mode === 'generate') await generate(db, Number(values.rows ?? 10_000_000), Number(values.months));
  else if (mode === 'plans') await plans(db);
  else if (mode === 'purge') await purge(db, Number(values.rows ?? 1_000_000));
  else if (mode === 'lookups') await lookups(db, Number(values.rows ?? 1000), Number(values.accounts));
  else throw new Error(`unknown mode ${mode}`);
} finally {
  await db.destroy();
}
