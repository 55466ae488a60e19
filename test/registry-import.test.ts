/**
 * Registry import. Invariants protected: a bad line is rejected with its reason and never stops the import; a batch
 * is written whole or not at all, so an interrupted import is completed by running it again; importing the same file
 * twice rewrites nothing; a number appears once per file (first line wins); a reissued number keeps the resident's
 * internal id (and so its account); a resident who dies loses their account and every live session and token; a
 * phone number is stored in one form (+84 and 9 digits) whatever way the file writes it, and files from before the
 * phone column still import.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Kysely, sql } from 'kysely';
import type pg from 'pg';
import { disableAccountsOfResidents } from '../src/accounts/disable.ts';
import { program } from '../src/cli/main.ts';
import { connect, createPool, type DB } from '../src/db/index.ts';
import {
  formatRecord,
  generateResidents,
  type ImportOptions,
  importResidents,
  REGISTRY_COLUMNS,
  REGISTRY_CSV_HEADER,
  type RegistryRecord,
  recordOf,
} from '../src/registry/index.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { until } from './helpers/wait.ts';

const root = path.resolve(import.meta.dirname, '..');
let database: TestDatabase;
let pool: pg.Pool;
let db: Kysely<DB>;

before(async () => {
  database = await freshDatabase();
  pool = createPool(database.url, 6);
  db = connect(pool);
});
after(async () => {
  await db.destroy();
  await database.drop();
});
beforeEach(async () => {
  await sql`truncate residents, accounts, resident_pin_history, oidc_payloads, registry_import_seen cascade`.execute(
    db,
  );
});

/** Generated residents as file records, all active. */
const records = (count: number, seed: number): RegistryRecord[] =>
  [...generateResidents(count, seed)].map((r) => recordOf({ ...r, status: 'active' }));
const csvLine = (r: RegistryRecord) => formatRecord(r, 'csv').slice(0, -1);
/** A CSV file: header, then records or raw lines. */
const csv = (lines: (RegistryRecord | string | Buffer)[]) =>
  Buffer.concat([
    Buffer.from(REGISTRY_CSV_HEADER),
    ...lines.map((l) =>
      Buffer.concat([
        typeof l === 'object' && !Buffer.isBuffer(l) ? Buffer.from(csvLine(l)) : Buffer.from(l),
        Buffer.from('\n'),
      ]),
    ),
  ]);

/** Imports `input`; returns the counts and the rejects report. */
async function run(input: Buffer | Readable, opts: Partial<ImportOptions> = {}) {
  const rejects = new PassThrough();
  const chunks: Buffer[] = [];
  rejects.on('data', (c: Buffer) => chunks.push(c));
  const counts = await importResidents(pool, Buffer.isBuffer(input) ? Readable.from([input]) : input, {
    format: 'csv',
    rejects,
    ...opts,
  });
  return { counts, rejects: Buffer.concat(chunks) };
}

/** Rejects report as line number -> reason. */
const reasons = (report: Buffer) =>
  Object.fromEntries(
    report
      .toString('latin1')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t').slice(0, 2)),
  );

const snapshot = async () =>
  (
    await sql<{ pin: string; id: string; xmin: string; updated_at: Date }>`
      select pin, id, xmin::text, updated_at from residents order by pin`.execute(db)
  ).rows;
const count = async () => Number((await sql<{ n: string }>`select count(*) n from residents`.execute(db)).rows[0]!.n);
const seenRows = async () =>
  Number((await sql<{ n: string }>`select count(*) n from registry_import_seen`.execute(db)).rows[0]!.n);

describe('importResidents', () => {
  it('imports a file, then finds everything unchanged the second time and rewrites no row', async () => {
    const recs = records(3000, 11);
    const file = csv(recs);
    const first = await run(file);
    assert.deepEqual(first.counts, { inserted: 3000, updated: 0, unchanged: 0, rejected: 0 });
    assert.equal(await count(), 3000);
    const r = recs[17]!;
    const row = await db.selectFrom('residents').selectAll().where('pin', '=', r.pin!).executeTakeFirstOrThrow();
    assert.equal(row.full_name, r.full_name);
    assert.equal(row.birth_date, r.birth_date);
    assert.equal(row.sex, r.sex);
    assert.equal(row.status, 'active');
    assert.equal(row.phone, r.phone);
    assert.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/, 'new residents get time-ordered ids (UUIDv7)');
    assert.deepEqual(row.permanent_residence, {
      province: r.permanent_province,
      ward: r.permanent_ward,
      street: r.permanent_street,
    });
    assert.equal(await seenRows(), 0, "the run's duplicate-detection rows are deleted");

    const before = await snapshot();
    const second = await run(file);
    assert.deepEqual(second.counts, { inserted: 0, updated: 0, unchanged: 3000, rejected: 0 });
    assert.deepEqual(await snapshot(), before, 'same ids, same updated_at, same xmin: nothing rewritten');
  });

  it('updates only the rows that changed', async () => {
    const recs = records(50, 12);
    await run(csv(recs));
    const before = await snapshot();
    const changed = recs.map((r, i) => (i === 3 ? { ...r, current_street: '9 Tràng Tiền' } : r));
    const { counts } = await run(csv(changed));
    assert.deepEqual(counts, { inserted: 0, updated: 1, unchanged: 49, rejected: 0 });
    const after = await snapshot();
    const moved = after.filter((a, i) => a.xmin !== before[i]!.xmin).map((a) => a.pin);
    assert.deepEqual(moved, [recs[3]!.pin]);
    const row = after.find((a) => a.pin === recs[3]!.pin)!;
    assert.ok(row.updated_at > before.find((b) => b.pin === row.pin)!.updated_at);
  });

  it('rejects each kind of bad line with its reason and imports the rest', async () => {
    const [ok1, ok2, a, b, c, d, e, f, g, h, i, j, k] = records(13, 13) as RegistryRecord[];
    const good = csvLine(a!);
    const at = good.indexOf(a!.given_name!);
    const badUtf8 = Buffer.concat([
      Buffer.from(good.slice(0, at)),
      Buffer.from([0xff, 0xc3]),
      Buffer.from(good.slice(at)),
    ]);
    const female = (r: RegistryRecord) => (r.sex === 'male' ? 'female' : 'male');
    const lines: (RegistryRecord | string | Buffer)[] = [
      ok1!, // line 2
      badUtf8, // 3
      good.split(',').slice(0, 18).join(','), // 4: 18 columns
      { ...b!, birth_date: `${b!.birth_date!.slice(0, 4)}-02-30` }, // 5
      { ...c!, pin: `003${c!.pin!.slice(3)}` }, // 6
      { ...d!, sex: female(d!) }, // 7
      {
        ...e!,
        birth_date: '2999-01-01',
        pin: `${e!.pin!.slice(0, 3)}${e!.sex === 'male' ? 8 : 9}99${e!.pin!.slice(6)}`,
      }, // 8
      { ...f!, full_name: '' }, // 9
      { ...g!, status: 'missing' }, // 10
      { ...h!, given_name: 'A\u0007' }, // 11
      { ...i!, sex: 'x' }, // 12
      `${csvLine(j!)},"x`, // 13: unterminated quote
      `${csvLine(k!).slice(0, -6)}${'x'.repeat(70_000)},active`, // 14: over 64 KiB
      ok2!, // 15
    ];
    const { counts, rejects } = await run(csv(lines));
    assert.deepEqual(counts, { inserted: 2, updated: 0, unchanged: 0, rejected: 12 });
    assert.deepEqual(reasons(rejects), {
      3: 'invalid_utf8',
      4: 'column_count: expected 20, got 18',
      5: `impossible_date: "${b!.birth_date!.slice(0, 4)}-02-30"`,
      6: 'unknown_province',
      7: 'sex_mismatch',
      8: 'future_date: 2999-01-01',
      9: 'missing_field: full_name',
      10: 'invalid_status: "missing"',
      11: 'invalid_text: given_name',
      12: 'invalid_sex: "x"',
      13: 'csv_syntax: CSV_QUOTE_NOT_CLOSED',
      14: 'line_too_long: over 65536 bytes',
    });
    // The report holds each original line, bytes as read (the invalid UTF-8 too).
    const reportLines = rejects.toString('latin1').split('\n');
    assert.ok(rejects.includes(Buffer.concat([Buffer.from('3\tinvalid_utf8\t'), badUtf8, Buffer.from('\n')])));
    assert.equal(
      reportLines.find((l) => l.startsWith('6\t')),
      Buffer.from(`6\tunknown_province\t${csvLine({ ...c!, pin: `003${c!.pin!.slice(3)}` })}`).toString('latin1'),
    );
    assert.equal(
      reportLines.find((l) => l.startsWith('14\t'))!.length,
      '14\tline_too_long: over 65536 bytes\t'.length + 65536,
    );
    assert.deepEqual(
      (await db.selectFrom('residents').select('pin').orderBy('pin').execute()).map((r) => r.pin),
      [ok1!.pin, ok2!.pin].sort(),
    );
  });

  it('accepts nam/nữ, normalizes names to NFC, trims, and stores empty fields as null', async () => {
    const [r] = records(1, 14) as RegistryRecord[];
    const decomposed = r!.full_name!.normalize('NFD');
    const line = {
      ...r!,
      full_name: ` ${decomposed} `,
      sex: r!.sex === 'male' ? 'Nam' : 'NỮ',
      place_of_origin: '',
      nationality: '',
    };
    const { counts } = await run(csv([line]));
    assert.equal(counts.inserted, 1);
    const row = await db.selectFrom('residents').selectAll().where('pin', '=', r!.pin!).executeTakeFirstOrThrow();
    assert.equal(row.full_name, r!.full_name!.normalize('NFC'));
    assert.equal(row.sex, r!.sex);
    assert.equal(row.place_of_origin, null);
    assert.equal(row.nationality, 'VN');
  });

  it('stores a phone number written any accepted way as +84 and 9 digits, and rejects other numbers', async () => {
    const accepted: [string, string | null][] = [
      ['0912345678', '+84912345678'],
      ['0912 345 678', '+84912345678'],
      ['091.234.5678', '+84912345678'],
      ['0351-234-567', '+84351234567'],
      ['84 7 0123 4567', '+84701234567'],
      ['84812345678', '+84812345678'],
      ['+84 56 123 4567', '+84561234567'],
      ['+84912345678', '+84912345678'],
      ['', null],
      ['   ', null],
    ];
    const refused = [
      '0241234567', // 02: a landline
      '0112345678', // 01: no such mobile prefix
      '091234567', // 9 digits
      '09123456789', // 11 digits
      '+840912345678', // the trunk 0 kept after the country code
      '+1 202 555 0100',
      '0912345678 ext 1',
      '(091) 234 5678',
      '０９１２３４５６７８', // full-width digits
    ];
    const recs = records(accepted.length + refused.length, 27);
    const lines = [
      ...accepted.map(([phone], i) => ({ ...recs[i]!, phone })),
      ...refused.map((phone, i) => ({ ...recs[accepted.length + i]!, phone })),
    ];
    const { counts, rejects } = await run(csv(lines));
    assert.deepEqual(counts, { inserted: accepted.length, updated: 0, unchanged: 0, rejected: refused.length });
    assert.deepEqual(
      reasons(rejects),
      Object.fromEntries(refused.map((_, i) => [String(accepted.length + i + 2), 'invalid_phone'])),
    );
    const rows = await db.selectFrom('residents').select(['pin', 'phone']).execute();
    const phoneOf = new Map(rows.map((r) => [r.pin, r.phone]));
    assert.deepEqual(
      accepted.map((_, i) => phoneOf.get(recs[i]!.pin!)),
      accepted.map(([, stored]) => stored),
    );

    // NDJSON: the key may be there (any accepted form) or not at all.
    const [a, b, c] = records(3, 28) as RegistryRecord[];
    const { phone: _, ...noPhone } = c!;
    const nd = [
      JSON.stringify({ ...a!, phone: '0987.654.321' }),
      JSON.stringify({ ...b!, phone: null }),
      JSON.stringify(noPhone),
    ];
    const ndRun = await run(Buffer.from(`${nd.join('\n')}\n`), { format: 'ndjson' });
    assert.deepEqual(ndRun.counts, { inserted: 3, updated: 0, unchanged: 0, rejected: 0 });
    const ndRows = await db
      .selectFrom('residents')
      .select(['pin', 'phone'])
      .where('pin', 'in', [a!.pin!, b!.pin!, c!.pin!])
      .execute();
    assert.deepEqual(
      new Map(ndRows.map((r) => [r.pin, r.phone])),
      new Map([
        [a!.pin, '+84987654321'],
        [b!.pin, null],
        [c!.pin, null],
      ]),
    );
  });

  it('still reads a CSV file whose header predates the phone column (19 columns, no phone)', async () => {
    const recs = records(5, 29);
    const legacyHeader = `${REGISTRY_COLUMNS.filter((c) => c !== 'phone').join(',')}\n`;
    assert.equal(legacyHeader, REGISTRY_CSV_HEADER.replace(/,phone\n$/, '\n'), 'phone is the last column');
    const legacyLine = (r: RegistryRecord) => csvLine({ ...r, phone: null }).slice(0, -1); // without ",phone"
    const file = Buffer.from(
      `${legacyHeader}${recs.map((r) => `${legacyLine(r)}\n`).join('')}${csvLine({ ...recs[0]!, pin: '001090000001' })}\n`,
    );
    const { counts, rejects } = await run(file);
    assert.deepEqual(counts, { inserted: 5, updated: 0, unchanged: 0, rejected: 1 });
    assert.deepEqual(reasons(rejects), { 7: 'column_count: expected 19, got 20' });
    const rows = await db.selectFrom('residents').select(['pin', 'full_name', 'phone']).orderBy('pin').execute();
    assert.deepEqual(
      rows,
      recs
        .map((r) => ({ pin: r.pin, full_name: r.full_name, phone: null }))
        .sort((x, y) => x.pin!.localeCompare(y.pin!)),
    );
  });

  it('updates a resident whose phone changed, and not one whose phone is only written differently', async () => {
    const recs = records(3, 30).map((r, i) => ({ ...r, phone: `+8491234567${i}` }));
    await run(csv(recs));
    const before = await snapshot();
    const next = [
      { ...recs[0]!, phone: '0987 654 321' }, // a new number
      { ...recs[1]!, phone: '091-234-5671' }, // the same number, written nationally
      { ...recs[2]!, phone: '' }, // no longer registered
    ];
    const { counts } = await run(csv(next));
    assert.deepEqual(counts, { inserted: 0, updated: 2, unchanged: 1, rejected: 0 });
    const rows = await db.selectFrom('residents').select(['pin', 'phone']).execute();
    const phoneOf = new Map(rows.map((r) => [r.pin, r.phone]));
    assert.equal(phoneOf.get(recs[0]!.pin!), '+84987654321');
    assert.equal(phoneOf.get(recs[1]!.pin!), '+84912345671');
    assert.equal(phoneOf.get(recs[2]!.pin!), null);
    const after = await snapshot();
    const moved = after.filter((a, i) => a.xmin !== before[i]!.xmin).map((a) => a.pin);
    assert.deepEqual(moved.sort(), [recs[0]!.pin, recs[2]!.pin].sort());
  });

  it('keeps the first of two lines with one number, in one batch or across batches', async () => {
    const [a, b, c, d] = records(4, 15) as RegistryRecord[];
    // batchSize 2: [a, b] [c, a'] [d, d']: a' is found in the database, d' in memory.
    const lines = [a!, b!, c!, { ...a!, full_name: 'Bản Sao' }, d!, { ...d!, given_name: 'Khác' }];
    const { counts, rejects } = await run(csv(lines), { batchSize: 2 });
    assert.deepEqual(counts, { inserted: 4, updated: 0, unchanged: 0, rejected: 2 });
    assert.deepEqual(reasons(rejects), { 5: 'duplicate_in_file', 7: 'duplicate_in_file' });
    assert.match(rejects.toString(), /^5\tduplicate_in_file\t.*Bản Sao/m);
    const stored = await db
      .selectFrom('residents')
      .select(['full_name', 'given_name'])
      .where('pin', 'in', [a!.pin!, d!.pin!])
      .orderBy('pin')
      .execute();
    assert.ok(!stored.some((s) => s.full_name === 'Bản Sao' || s.given_name === 'Khác'), 'the first line wins');
    assert.equal(await seenRows(), 0);
  });

  it('rejects a last line cut short and imports the lines before it', async () => {
    const recs = records(10, 16).map((r) => ({ ...r, phone: null }));
    const full = csv(recs);
    const cut = full.subarray(0, full.length - 12); // inside the last line, no newline at the end
    const { counts, rejects } = await run(cut);
    assert.deepEqual(counts, { inserted: 9, updated: 0, unchanged: 0, rejected: 1 });
    assert.match(rejects.toString(), /^11\tcolumn_count: expected 20, got 1[0-9]\t/);

    const nd = Buffer.from(recs.map((r) => formatRecord(r, 'ndjson')).join(''));
    const ndCut = nd.subarray(0, nd.length - 30);
    const again = await run(ndCut, { format: 'ndjson' });
    assert.deepEqual(again.counts, { inserted: 0, updated: 0, unchanged: 9, rejected: 1 });
    assert.match(again.rejects.toString(), /^10\tinvalid_json\t\{"pin"/);
  });

  it('imports NDJSON and refuses unknown keys and non-string values', async () => {
    const recs = records(5, 17);
    const lines = [
      ...recs.map((r) => JSON.stringify(r)),
      JSON.stringify({ ...recs[0], pin: undefined, pinn: '1' }),
      JSON.stringify({ ...recs[1], birth_date: 19900101 }),
      '[1,2]',
    ];
    const { counts, rejects } = await run(Buffer.from(`${lines.join('\n')}\n`), { format: 'ndjson' });
    assert.deepEqual(counts, { inserted: 5, updated: 0, unchanged: 0, rejected: 3 });
    assert.deepEqual(reasons(rejects), {
      6: 'unknown_field: "pinn"',
      7: 'not_a_string: birth_date',
      8: 'not_an_object',
    });
  });

  it('stops at a wrong or missing CSV header, writing nothing', async () => {
    const [r] = records(1, 18) as RegistryRecord[];
    await assert.rejects(
      run(Buffer.from(`pin,name\n${csvLine(r!)}\n`)),
      /line 1: the CSV header must be pin,previous_pin,/,
    );
    await assert.rejects(run(Buffer.from('')), /the CSV header is missing/);
    assert.equal(await count(), 0);
    assert.equal(await seenRows(), 0);
  });

  it('leaves whole batches after a read error, and a rerun completes the import', async () => {
    const recs = records(100, 19);
    async function* killedAfter(n: number) {
      yield Buffer.from(REGISTRY_CSV_HEADER);
      for (const r of recs.slice(0, n)) yield Buffer.from(`${csvLine(r)}\n`);
      throw new Error('simulated crash: input lost');
    }
    await assert.rejects(run(Readable.from(killedAfter(95)), { batchSize: 10 }), /simulated crash/);
    assert.equal(await count(), 90, 'the nine full batches read are committed; the partial tenth is not');
    assert.equal(await seenRows(), 0);
    const { counts } = await run(csv(recs), { batchSize: 10 });
    assert.deepEqual(counts, { inserted: 10, updated: 0, unchanged: 90, rejected: 0 });
    assert.equal(await count(), 100);
  });

  it("deletes what a dead import recorded in registry_import_seen, never a live import's rows", async () => {
    const dead = '00000000-0000-4000-8000-000000000001';
    const live = '00000000-0000-4000-8000-000000000002';
    const holder = await pool.connect();
    try {
      await holder.query('select pg_advisory_lock(hashtextextended($1::uuid::text, 0))', [live]);
      await sql`insert into registry_import_seen (run_id, pin) values
        (${dead}::uuid, '001090000001'), (${dead}::uuid, '001090000002'), (${live}::uuid, '001090000001')`.execute(db);
      await run(csv(records(3, 23)));
      const left = await sql<{ run_id: string }>`select run_id from registry_import_seen`.execute(db);
      assert.deepEqual(
        left.rows.map((r) => r.run_id),
        [live],
      );
    } finally {
      await holder.query('select pg_advisory_unlock_all()');
      holder.release();
    }
  });

  it('refuses to run while another import runs on the same database', async () => {
    // The first import's file stays open (still reading) until the second has been refused.
    let finish = () => {};
    const reading = new Promise<void>((r) => {
      finish = r;
    });
    const first = run(
      Readable.from(
        (async function* () {
          yield Buffer.from(REGISTRY_CSV_HEADER);
          await reading;
          yield Buffer.from(`${csvLine(records(1, 25)[0]!)}\n`);
        })(),
      ),
    );
    await until('the first import holds the import lock', async () => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_locks where locktype = 'advisory' and granted
        and database = (select oid from pg_database where datname = current_database())`.execute(db);
      return r.rows[0]!.n > 0;
    });
    await assert.rejects(run(csv(records(2, 26))), /another registry import is running/);
    finish();
    assert.deepEqual((await first).counts, { inserted: 1, updated: 0, unchanged: 0, rejected: 0 });
    assert.equal((await run(csv(records(2, 26)))).counts.inserted, 2, 'the lock is released after the first');
  });

  it('writes a batch whole or not at all when the database fails inside it', async () => {
    const recs = records(100, 20);
    const poison = recs[24]!.pin!; // third batch of ten
    await sql`create function registry_test_fail() returns trigger language plpgsql as $$
      begin if new.pin = ${sql.lit(poison)} then raise exception 'simulated crash'; end if; return new; end $$`.execute(
      db,
    );
    await sql`create trigger registry_test_fail before insert on residents for each row execute function registry_test_fail()`.execute(
      db,
    );
    try {
      await assert.rejects(run(csv(recs), { batchSize: 10 }), /simulated crash/);
    } finally {
      await sql`drop trigger registry_test_fail on residents`.execute(db);
      await sql`drop function registry_test_fail`.execute(db);
    }
    const pins = new Set((await db.selectFrom('residents').select('pin').execute()).map((r) => r.pin));
    assert.ok(
      recs.slice(0, 20).every((r) => pins.has(r.pin!)),
      'batches one and two are there',
    );
    assert.ok(!recs.slice(20, 30).some((r) => pins.has(r.pin!)), 'nothing of the failed batch');
    // Batch four was being written on the other connection at the time: it is there whole, or not at all.
    assert.ok(pins.size === 20 || pins.size === 30, `${pins.size} rows`);
    assert.equal(await seenRows(), 0);
    const { counts } = await run(csv(recs), { batchSize: 10 });
    assert.deepEqual(counts, { inserted: 100 - pins.size, updated: 0, unchanged: pins.size, rejected: 0 });
  });

  it('moves a reissued number to the same resident, keeping its id and account', async () => {
    const [r, other] = records(2, 21) as RegistryRecord[];
    await run(csv([r!, other!]));
    const resident = await db
      .selectFrom('residents')
      .select(['id', 'updated_at'])
      .where('pin', '=', r!.pin!)
      .executeTakeFirstOrThrow();
    const account = await db
      .insertInto('accounts')
      .values({ resident_id: resident.id, password_hash: 'x' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const newPin = `${r!.pin!.slice(0, 6)}${String((Number(r!.pin!.slice(6)) + 1) % 1e6).padStart(6, '0')}`;
    const file = csv([{ ...r!, pin: newPin, previous_pin: r!.pin }, other!]);

    const { counts } = await run(file);
    assert.deepEqual(counts, { inserted: 0, updated: 1, unchanged: 1, rejected: 0 });
    const moved = await db
      .selectFrom('residents')
      .select(['id', 'pin', 'updated_at'])
      .where('id', '=', resident.id)
      .executeTakeFirstOrThrow();
    assert.equal(moved.pin, newPin);
    assert.ok(moved.updated_at > resident.updated_at);
    assert.equal(
      await db.selectFrom('residents').select('id').where('pin', '=', r!.pin!).executeTakeFirst(),
      undefined,
    );
    const bound = await db
      .selectFrom('accounts')
      .select('resident_id')
      .where('id', '=', account.id)
      .executeTakeFirstOrThrow();
    assert.equal(bound.resident_id, resident.id, 'the account (and so its sub) carries over');
    const history = await db.selectFrom('resident_pin_history').select(['resident_id', 'old_pin', 'new_pin']).execute();
    assert.deepEqual(history, [{ resident_id: resident.id, old_pin: r!.pin, new_pin: newPin }]);

    const again = await run(file);
    assert.deepEqual(again.counts, { inserted: 0, updated: 0, unchanged: 2, rejected: 0 });
    assert.equal((await db.selectFrom('resident_pin_history').select('id').execute()).length, 1);
  });

  it('applies a reissue after the lines before it, even with batches written at once', async () => {
    const [r, slow, other] = records(3, 24) as RegistryRecord[];
    await run(csv([r!]));
    const { id } = await db.selectFrom('residents').select('id').where('pin', '=', r!.pin!).executeTakeFirstOrThrow();
    const newPin = `${r!.pin!.slice(0, 6)}${String((Number(r!.pin!.slice(6)) + 7) % 1e6).padStart(6, '0')}`;
    const moved = { ...r!, current_street: '1 Đinh Tiên Hoàng' };
    // Batch one updates the old number after a slow insert; batch two, on the other connection, moves the number.
    await sql`create function registry_test_slow() returns trigger language plpgsql as $$
      begin if new.pin = ${sql.lit(slow!.pin)} then perform pg_sleep(0.5); end if; return new; end $$`.execute(db);
    await sql`create trigger registry_test_slow before insert on residents for each row execute function registry_test_slow()`.execute(
      db,
    );
    try {
      const lines = [slow!, moved, { ...moved, pin: newPin, previous_pin: r!.pin }, other!];
      const { counts } = await run(csv(lines), { batchSize: 2 });
      assert.deepEqual(counts, { inserted: 2, updated: 2, unchanged: 0, rejected: 0 });
    } finally {
      await sql`drop trigger registry_test_slow on residents`.execute(db);
      await sql`drop function registry_test_slow`.execute(db);
    }
    const rows = await db
      .selectFrom('residents')
      .select(['id', 'pin', 'current_residence'])
      .where('id', '=', id)
      .execute();
    assert.deepEqual(rows, [
      {
        id,
        pin: newPin,
        current_residence: { province: r!.current_province, ward: r!.current_ward, street: '1 Đinh Tiên Hoàng' },
      },
    ]);
    assert.equal(await count(), 3, 'the old number was not inserted again');
  });

  it("disables a resident's account and ends its sessions and grants when the registry records a death", async () => {
    const [r, other] = records(2, 22) as RegistryRecord[];
    await run(csv([r!, other!]));
    const ids = await db.selectFrom('residents').select(['id', 'pin']).execute();
    const idOf = (pin: string) => ids.find((x) => x.pin === pin)!.id;
    const [account, bystander] = await Promise.all(
      [r!, other!].map((x) =>
        db
          .insertInto('accounts')
          .values({ resident_id: idOf(x.pin!), password_hash: 'x' })
          .returning('id')
          .executeTakeFirstOrThrow(),
      ),
    );
    // Codes and tokens belong to a grant of their account, as oidc-provider issues them (they are found through it).
    const payload = (model: string, id: string, accountId: string) => ({
      model,
      id,
      payload: JSON.stringify({ accountId }),
      grant_id: /Token$/.test(model) ? 'g1' : null,
      uid: null,
      user_code: null,
      expires_at: null,
      consumed_at: null,
    });
    await db
      .insertInto('oidc_payloads')
      .values([
        payload('Session', 's1', account!.id),
        payload('Grant', 'g1', account!.id),
        payload('RefreshToken', 'rt1', account!.id),
        payload('AccessToken', 'at1', account!.id),
        payload('Session', 's2', bystander!.id),
      ])
      .execute();

    const inactive: string[][] = [];
    const onInactive = async (residentIds: string[]) => {
      inactive.push(residentIds);
      await disableAccountsOfResidents(db, residentIds);
    };
    const file = csv([{ ...r!, status: 'deceased' }, other!]);
    const { counts } = await run(file, { onInactive });
    assert.deepEqual(counts, { inserted: 0, updated: 1, unchanged: 1, rejected: 0 });
    assert.deepEqual(inactive, [[idOf(r!.pin!)]]);
    const statuses = await db.selectFrom('accounts').select(['id', 'status']).execute();
    assert.equal(statuses.find((a) => a.id === account!.id)!.status, 'disabled');
    assert.equal(statuses.find((a) => a.id === bystander!.id)!.status, 'active');
    const left = await db.selectFrom('oidc_payloads').select(['model', 'id']).orderBy('id').execute();
    assert.deepEqual(
      left,
      [
        { model: 'Session', id: 's1' },
        { model: 'Session', id: 's2' },
      ],
      'grants and tokens are gone at once; sessions end through the service (back-channel logout first)',
    );
    const requested = await db.selectFrom('session_terminations').select(['account_id', 'reason']).execute();
    assert.deepEqual(requested, [{ account_id: account!.id, reason: 'resident_inactive' }]);

    await run(file, { onInactive });
    assert.equal(inactive.length, 1, 'a resident already deceased is not reported again');
  });
});

const registered = (await program()).commands.some((c) => c.name() === 'registry');

describe('dinhdanh registry (CLI)', () => {
  const skip = registered ? false : 'registry commands are not registered in src/cli/main.ts yet';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-registry-'));
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['src/cli/main.ts', 'registry', ...args], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('generates a file and imports it, printing counts, writing rejects and an audit event', { skip }, async () => {
    const file = path.join(tmp, 'residents.csv');
    const gen = cli('generate', '--count', '300', '--seed', '5', '--out', file);
    assert.equal(gen.status, 0, gen.stderr);
    writeFileSync(file, `${readFileSync(file, 'utf8')}001090012345,,X,X,,X,2023-02-30,male,VN,,,,,,,,,,active,\n`);
    const rejectsFile = path.join(tmp, 'rejects.tsv');
    const r = cli('import', file, '--rejects', rejectsFile, '--operator', 'op-1');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    const counts = JSON.parse(r.stdout);
    assert.equal(counts.inserted + counts.unchanged, 300);
    assert.equal(counts.rejected, 1);
    assert.equal(
      readFileSync(rejectsFile, 'utf8'),
      '302\timpossible_date: "2023-02-30"\t001090012345,,X,X,,X,2023-02-30,male,VN,,,,,,,,,,active,\n',
    );
    const event = await db
      .selectFrom('audit_events')
      .select(['actor_type', 'actor_id', 'outcome', 'details'])
      .where('action', '=', 'registry.imported')
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow();
    assert.equal(event.actor_type, 'operator');
    assert.equal(event.actor_id, 'op-1');
    assert.equal(event.outcome, 'success');
    assert.equal(event.details.rejected, 1);
    assert.equal(event.details.inserted, counts.inserted);

    const stdout = cli('generate', '--count', '2', '--format', 'ndjson');
    assert.equal(stdout.status, 0);
    assert.equal(stdout.stdout.trim().split('\n').length, 2);
  });

  it('writes personal data 0600 and never over an existing file without --force', { skip }, () => {
    const file = path.join(tmp, 'private.csv');
    assert.equal(cli('generate', '--count', '3', '--out', file).status, 0);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'residents file 0600');
    const again = cli('generate', '--count', '5', '--out', file);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists \(--force replaces it\)/);
    assert.equal(again.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 4, 'untouched');
    const keep = path.join(tmp, 'master.key');
    writeFileSync(keep, 'precious', { mode: 0o644 });
    const r = cli('import', file, '--rejects', keep);
    assert.equal(r.status, 1);
    assert.equal(readFileSync(keep, 'utf8'), 'precious', 'a typo in --rejects destroys nothing');
    assert.equal(cli('generate', '--count', '5', '--out', keep, '--force').status, 0);
    assert.equal(statSync(keep).mode & 0o777, 0o600, 'replaced with --force, and made 0600');
  });

  it('refuses a missing file with one line and exit 1', { skip }, () => {
    const r = cli('import', path.join(tmp, 'nope.csv'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read .*nope\.csv: no such file/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
