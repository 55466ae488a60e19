/**
 * The audit trail partitioned by month. Invariant: partitioning changes nothing the chain promises: it verifies
 * across month boundaries; archiving drops whole months yet the rest verifies from the checkpoint; every partition,
 * present or created later, refuses updates and deletes; the coming months' partitions are created ahead, once;
 * the rows of an existing deployment survive the migration and still verify.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Kysely, type Migration, Migrator, sql } from 'kysely';
import { appendEvents } from '../src/audit/audit.repository.ts';
import { chainHash, GENESIS } from '../src/audit/chain.ts';
import { archiveEvents, maintainAuditPartitions, verifyChain } from '../src/audit/index.ts';
import { listPartitions, monthStart, partitionName } from '../src/audit/partitions.repository.ts';
import { connect, type DB } from '../src/db/index.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';

let database: TestDatabase;
let db: Kysely<DB>;

before(async () => {
  database = await freshDatabase();
  db = connect(database.url, 4);
});
after(async () => {
  await db?.destroy();
  await database?.drop();
});
beforeEach(async () => {
  await sql`truncate audit_events, audit_checkpoints`.execute(db);
});

const now = new Date();
const event = (i: number) => ({
  actorType: 'system',
  actorId: null,
  action: 'test',
  subject: null,
  clientId: null,
  ip: null,
  userAgent: null,
  outcome: 'success',
  reason: null,
  details: { i },
});

/** Appends one event per time, in order, each at its time. */
async function appendAt(...times: Date[]) {
  for (const [i, t] of times.entries()) await appendEvents(db, [event(i)], () => t);
}

async function partitionOf(seq: number): Promise<string> {
  const { rows } = await sql<{ p: string }>`
    select tableoid::regclass::text as p from audit_events where seq = ${seq}`.execute(db);
  return rows[0]!.p;
}

const names = async () => (await listPartitions(db)).map((p) => p.name);

describe('audit partitions', () => {
  it('verifies the chain across a month boundary', async () => {
    const boundary = monthStart(now, 1);
    await appendAt(new Date(boundary.getTime() - 2), new Date(boundary.getTime() - 1), boundary);
    assert.equal(await partitionOf(2), partitionName(monthStart(now)));
    assert.equal(await partitionOf(3), partitionName(boundary));
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 3, lastSeq: 3 });
  });

  it('archives whole months by dropping their partitions, and verifies from the checkpoint', async () => {
    const m = (k: number, day: number) => new Date(monthStart(now, k).getTime() + day * 86_400_000);
    await maintainAuditPartitions(db, monthStart(now, -3), 3);
    await appendAt(m(-3, 1), m(-3, 20), m(-2, 3), m(-1, 4), m(-1, 20), m(0, 0));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-parts-'));

    // A cut on a month boundary: the two months before it go whole, their tables dropped, no row deleted.
    const r = await archiveEvents(db, monthStart(now, -1), path.join(dir, 'a.ndjson'));
    assert.deepEqual(r, {
      archived: 3,
      upToSeq: 3,
      droppedPartitions: [partitionName(monthStart(now, -3)), partitionName(monthStart(now, -2))],
    });
    assert.equal(readFileSync(path.join(dir, 'a.ndjson'), 'utf8').trim().split('\n').length, 3);
    const left = await names();
    assert.ok(!left.includes(partitionName(monthStart(now, -3))) && left.includes(partitionName(monthStart(now, -1))));
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 3, lastSeq: 6 });

    // A cut inside a month: its rows before the cut are deleted, the partition stays.
    const mid = await archiveEvents(db, m(-1, 10), path.join(dir, 'b.ndjson'));
    assert.deepEqual(mid, { archived: 1, upToSeq: 4 });
    assert.ok((await names()).includes(partitionName(monthStart(now, -1))));
    await appendAt(new Date());
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 3, lastSeq: 7 });
  });

  it('creates the coming months ahead, once, with the indexes and the append-only trigger', async () => {
    const from = monthStart(now, 12);
    const created = await maintainAuditPartitions(db, from, 2);
    assert.deepEqual(
      created,
      [0, 1, 2].map((k) => partitionName(monthStart(from, k))),
    );
    assert.deepEqual(await maintainAuditPartitions(db, from, 2), [], 'idempotent');
    const name = created[0]!;
    const { rows: idx } = await sql<{ t: string; n: number }>`
      select tablename as t, count(*)::int as n from pg_indexes where tablename in ('audit_events', ${name})
      group by 1 order by 1`.execute(db);
    assert.equal(idx[1]!.n, idx[0]!.n, 'every index of the parent (primary key, subject, actor, action, at...)');
    assert.ok(idx[0]!.n >= 5);
    const { rows: trg } = await sql<{ n: number }>`
      select count(*)::int as n from pg_trigger where tgrelid = ${name}::regclass and tgname = 'audit_events_append_only'`.execute(
      db,
    );
    assert.equal(trg[0]!.n, 1);
  });

  it('moves rows that fell into the DEFAULT partition into their month when it is created', async () => {
    const far = monthStart(now, 30);
    await appendAt(new Date(), new Date(far.getTime() + 1000));
    assert.equal(await partitionOf(2), 'audit_events_default');
    assert.deepEqual(await maintainAuditPartitions(db, far, 0), [partitionName(far)]);
    assert.equal(await partitionOf(2), partitionName(far));
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 2, lastSeq: 2 });
  });

  it('is append-only on every partition: update and delete are refused, through the parent or directly', async () => {
    const next = monthStart(now, 1);
    await appendAt(new Date(), next, new Date(monthStart(now, 40).getTime() + 1));
    for (const [seq, table] of [
      [1, partitionName(monthStart(now))],
      [2, partitionName(next)],
      [3, 'audit_events_default'],
    ] as const) {
      await assert.rejects(sql`update audit_events set outcome = 'x' where seq = ${seq}`.execute(db), /append-only/);
      await assert.rejects(sql`delete from audit_events where seq = ${seq}`.execute(db), /append-only/);
      await assert.rejects(
        sql`update ${sql.id(table)} set outcome = 'x' where seq = ${seq}`.execute(db),
        /append-only/,
      );
      await assert.rejects(sql`delete from ${sql.id(table)} where seq = ${seq}`.execute(db), /append-only/);
    }
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 3, lastSeq: 3 });
  });
});

describe('audit partitions migration', () => {
  it('moves the rows of an existing deployment into monthly partitions; the chain still verifies', async () => {
    const old = await freshDatabase({ migrate: false });
    const odb = connect(old.url, 1);
    try {
      const folder = path.resolve(import.meta.dirname, '../migrations');
      const migrator = new Migrator({
        db: odb,
        provider: {
          async getMigrations() {
            const out: Record<string, Migration> = {};
            for (const f of (await fs.readdir(folder)).sort())
              out[f.replace(/\.ts$/, '')] = (await import(path.join(folder, f))) as Migration;
            return out;
          },
        },
      });
      const before = await migrator.migrateTo('20261130T180000_passkeys');
      assert.equal(before.error, undefined);
      // Rows as the unpartitioned table held them: two months ago and now.
      let prev = GENESIS;
      for (const [i, at] of [monthStart(now, -2), new Date(monthStart(now, -2).getTime() + 5), now].entries()) {
        const content = { ...event(i), seq: i + 1, at };
        const hash = chainHash(prev, content);
        await sql`insert into audit_events (seq, at, actor_type, action, outcome, details, prev_hash, hash)
          values (${content.seq}, ${at}, 'system', 'test', 'success', ${JSON.stringify(content.details)}::jsonb,
            ${prev}, ${hash})`.execute(odb);
        prev = hash;
      }
      const latest = await migrator.migrateToLatest();
      assert.equal(latest.error, undefined);
      assert.deepEqual(await verifyChain(odb), { ok: true, rows: 3, lastSeq: 3 });
      const { rows } = await sql<{ p: string; n: number }>`
        select tableoid::regclass::text as p, count(*)::int as n from audit_events group by 1 order by 1`.execute(odb);
      assert.deepEqual(rows, [
        { p: partitionName(monthStart(now, -2)), n: 2 },
        { p: partitionName(monthStart(now)), n: 1 },
      ]);
      assert.ok(
        (await listPartitions(odb)).some((p) => p.name === partitionName(monthStart(now, 3))),
        'months ahead created',
      );
      await assert.rejects(sql`delete from audit_events where seq = 1`.execute(odb), /append-only/);
    } finally {
      await odb.destroy();
      await old.drop();
    }
  });
});
