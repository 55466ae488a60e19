/**
 * Tamper-evident audit trail. Invariant: any change to a stored event (content altered, a row deleted, rows
 * reordered) is detected by walking the chain, and the first broken row is named; concurrent writers on several
 * nodes still produce one valid chain; the application cannot update or delete rows.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Kysely, sql } from 'kysely';
import { canonicalAroundAtAndSeq, canonicalJson } from '../src/audit/chain.ts';
import { archiveEvents, createAuditQueue, exportEvents, recordEvent, verifyChain } from '../src/audit/index.ts';
import { connect, type DB } from '../src/db/index.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { labelOf, statementsOf } from './helpers/statements.ts';
import { until } from './helpers/wait.ts';

const run = promisify(execFile);
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

async function writeFive() {
  for (let i = 1; i <= 5; i++) {
    await recordEvent(db, { actor: { type: 'system' }, action: 'test', outcome: 'success', details: { i } });
  }
}

/** Tampering as an attacker with database access would: with the append-only trigger disabled. */
async function tamper(statement: ReturnType<typeof sql>) {
  await db.transaction().execute(async (trx) => {
    await sql`alter table audit_events disable trigger audit_events_append_only`.execute(trx);
    await statement.execute(trx);
    await sql`alter table audit_events enable trigger audit_events_append_only`.execute(trx);
  });
}

describe('audit chain', () => {
  it('verifies an intact chain', async () => {
    await writeFive();
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 5, lastSeq: 5 });
  });

  it('never stores secrets in details', async () => {
    const e = await recordEvent(db, {
      actor: { type: 'citizen' },
      action: 'login',
      outcome: 'failure',
      details: { password: 'hunter2', access_token: 't', code: 'c', client_secret: 's', nested: { otp: '1' }, kept: 1 },
    });
    assert.deepEqual(e.details, { nested: {}, kept: 1 });
    const { rows } = await sql<{ details: unknown }>`select details from audit_events`.execute(db);
    assert.doesNotMatch(JSON.stringify(rows), /hunter2/);
  });

  it('stores a batch of hostile strings exactly and verifies it', async () => {
    const queue = createAuditQueue(db, (err) => assert.fail(String(err)), 10_000);
    const odd = ['a "quoted" {brace}, comma', 'back\\slash \\"', 'NULL', '', 'Nguyễn Văn Ánh 🙂', null];
    for (const [i, v] of odd.entries())
      queue.record({
        actor: { type: 'client', id: v ?? undefined },
        action: 'test.batch',
        outcome: 'failure',
        userAgent: v ?? undefined,
        reason: v ?? undefined,
        details: { i, v, nested: { z: [v, 1], a: true } },
      });
    await queue.close();
    const rows = await db
      .selectFrom('audit_events')
      .select(['seq', 'actor_id', 'user_agent', 'reason', 'details'])
      .orderBy('seq')
      .execute();
    assert.equal(rows.length, odd.length);
    for (const [i, v] of odd.entries()) {
      assert.equal(rows[i]!.actor_id, v || null, 'an empty string is stored as no value');
      assert.equal(rows[i]!.user_agent, v || null);
      assert.equal(rows[i]!.reason, v || null);
      assert.deepEqual(rows[i]!.details, { i, v, nested: { z: [v, 1], a: true } });
    }
    assert.equal((await verifyChain(db)).ok, true);
  });

  it('appends in one statement, the hash made by the database the same as the chain rule', async () => {
    // A login writes its event in the request: before, five statements (begin, lock, last link, insert, commit).
    const [, sent] = await statementsOf(() =>
      recordEvent(db, { actor: { type: 'citizen', id: 'a1' }, action: 'login', outcome: 'success' }),
    );
    const statements = sent.map(labelOf);
    assert.deepEqual(statements, ['audit_append']);
    await writeFive();
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 6, lastSeq: 6 });
  });

  it('splits canonical JSON around at and seq exactly, whatever the details hold', () => {
    const contents = [
      { actorType: 'system', actorId: null, action: 'a', subject: null, clientId: null, ip: null, userAgent: null },
      { actorType: 'client', actorId: '"seq":0,"subject":', action: 'x', subject: 's', clientId: 'c', ip: '::1' },
      { actorType: 'citizen', actorId: 'Ánh 🙂', action: 'y', subject: null, clientId: null, ip: null },
    ].map((c, i) => ({
      ...c,
      userAgent: 'ua',
      at: new Date(Date.UTC(2026, 10, 30, 1, 2, 3, i)),
      outcome: 'success',
      reason: null,
      details: { seq: 7, subject: 'inner', nested: { z: [1, null], a: '\\' } },
    }));
    for (const c of contents)
      for (const seq of [1, 42, 9007199254740991]) {
        const { at, ...rest } = c;
        const [p0, p1, p2] = canonicalAroundAtAndSeq(rest);
        assert.equal(`${p0}${JSON.stringify(at.toISOString())}${p1}${seq}${p2}`, canonicalJson({ ...c, seq }));
      }
  });

  it('writes a queued event within its interval, and retries a failed write with no further event to wake it', async () => {
    // The queue arms its timer only while events wait: the retry after a failure must arm it too.
    const errors: unknown[] = [];
    const queue = createAuditQueue(db, (err) => errors.push(err), 25);
    const count = async () =>
      Number((await sql<{ n: string }>`select count(*) as n from audit_events`.execute(db)).rows[0]!.n);
    const event = (i: number) => ({
      actor: { type: 'system' as const },
      action: 'test.queued',
      outcome: 'success' as const,
      details: { i },
    });
    // Writes fail while audit_refuse has a row (a trigger of this file's own database, removed below).
    await sql`create table audit_refuse (x int)`.execute(db);
    await sql`create function audit_refuse() returns trigger language plpgsql as $$
      begin if exists (select 1 from audit_refuse) then raise exception 'refused by the test'; end if; return new; end $$`.execute(
      db,
    );
    await sql`create trigger audit_refuse before insert on audit_events for each row execute function audit_refuse()`.execute(
      db,
    );
    try {
      queue.record(event(1));
      await until('the first event is written', async () => (await count()) === 1, 2000);
      await sql`insert into audit_refuse values (1)`.execute(db);
      queue.record(event(2));
      await until('its write fails', () => errors.length > 0, 2000);
      assert.equal(queue.pending, 1, 'the event is kept');
      await sql`delete from audit_refuse`.execute(db);
      await until('the retry writes it, unprompted', async () => (await count()) === 2, 6000);
      assert.equal(queue.pending, 0);
    } finally {
      await queue.close();
      await sql`drop trigger audit_refuse on audit_events`.execute(db);
      await sql`drop function audit_refuse()`.execute(db);
      await sql`drop table audit_refuse`.execute(db);
    }
    assert.equal((await verifyChain(db)).ok, true);
  });

  it('detects and locates an altered row', async () => {
    await writeFive();
    await tamper(sql`update audit_events set outcome = 'failure' where seq = 3`);
    assert.deepEqual(await verifyChain(db), { ok: false, rows: 3, seq: 3, problem: 'altered' });
  });

  it('detects and locates a deleted row', async () => {
    await writeFive();
    await tamper(sql`delete from audit_events where seq = 3`);
    const r = await verifyChain(db);
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.seq, 4);
    assert.equal(r.ok === false && r.problem, 'missing_before');
  });

  it('detects a deleted first row', async () => {
    await writeFive();
    await tamper(sql`delete from audit_events where seq = 1`);
    const r = await verifyChain(db);
    assert.equal(r.ok === false && r.seq, 2);
  });

  it('detects reordered rows', async () => {
    await writeFive();
    await tamper(sql`update audit_events set seq = -2 where seq = 2`);
    await tamper(sql`update audit_events set seq = 2 where seq = 3`);
    await tamper(sql`update audit_events set seq = 3 where seq = -2`);
    const r = await verifyChain(db);
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.seq, 2);
  });

  it('is append-only for the application: update and delete are refused by the database', async () => {
    await writeFive();
    await assert.rejects(sql`update audit_events set outcome = 'x' where seq = 1`.execute(db), /append-only/);
    await assert.rejects(sql`delete from audit_events where seq = 1`.execute(db), /append-only/);
  });

  it('keeps one valid chain with concurrent writers in two processes', async () => {
    const writer = path.resolve(import.meta.dirname, 'fixtures/audit-writer.ts');
    await Promise.all([
      run(process.execPath, [writer, database.url, '60', 'A']),
      run(process.execPath, [writer, database.url, '60', 'B']),
    ]);
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 120, lastSeq: 120 });
    // Times follow the chain (taken under its lock, by the database's clock): an export by time misses nothing.
    const ats = (await sql<{ at: Date }>`select at from audit_events order by seq`.execute(db)).rows.map((r) => +r.at);
    assert.ok(
      ats.every((t, i) => i === 0 || t >= ats[i - 1]!),
      'at never goes back as seq goes on',
    );
  });

  it('never overwrites an archive: an existing file is a one-line error and nothing is archived', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'audit-')), 'exists.ndjson');
    writeFileSync(file, 'earlier archive\n');
    await assert.rejects(
      archiveEvents(db, new Date(Date.now() + 1000), file),
      /exists: an archive is never overwritten/,
    );
    assert.equal(readFileSync(file, 'utf8'), 'earlier archive\n');
  });

  it('archives old events to a file and still verifies from the checkpoint', async () => {
    await writeFive();
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'audit-')), 'archive.ndjson');
    const r = await archiveEvents(db, new Date(Date.now() + 1000), file);
    assert.deepEqual(r, { archived: 5, upToSeq: 5 });
    const text = readFileSync(file, 'utf8');
    assert.equal(text.trim().split('\n').length, 5);
    const [cp] = (await sql<{ archive_sha256: string }>`select archive_sha256 from audit_checkpoints`.execute(db)).rows;
    assert.equal(cp?.archive_sha256, createHash('sha256').update(text).digest('hex'));
    await recordEvent(db, { actor: { type: 'system' }, action: 'after', outcome: 'success' });
    assert.deepEqual(await verifyChain(db), { ok: true, rows: 1, lastSeq: 6 });
  });

  it('exports with filters as NDJSON', async () => {
    await writeFive();
    await recordEvent(db, { actor: { type: 'officer', id: 'cb-01' }, action: 'account.unlocked', outcome: 'success' });
    const lines: string[] = [];
    assert.equal(await exportEvents(db, { actorType: 'officer' }, (l) => void lines.push(l)), 1);
    assert.equal(JSON.parse(lines[0]!).actorId, 'cb-01');
    assert.equal(await exportEvents(db, { since: new Date(Date.now() + 60_000) }, () => {}), 0);
  });
});
