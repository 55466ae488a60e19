/**
 * Synthetic residents: the same seed gives the same residents; every personal identification number is valid for its
 * holder (checkPin) and unique; names, places and dates look like Vietnam's; text is NFC; most living adults, and no
 * child, have a mobile number; and what the generator writes (CSV or NDJSON) is what the importer reads back, field
 * for field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GENERATED_AS_OF } from '../src/registry/generate.ts';
import { parseCsvLine, parseNdjsonLine, validateRecord } from '../src/registry/import.validate.ts';
import {
  checkPin,
  formatRecord,
  generateResidents,
  PROVINCES,
  REGISTRY_COLUMNS,
  REGISTRY_CSV_HEADER,
  recordOf,
} from '../src/registry/index.ts';

const FAMILY = new Set(
  'Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Trịnh Mai Trương'.split(' '),
);
const PROVINCE_NAMES = new Set(PROVINCES.values());

describe('generateResidents', () => {
  it('gives the same residents for the same seed, and others for another seed', () => {
    const a = [...generateResidents(2000, 42)];
    const b = [...generateResidents(2000, 42)];
    assert.deepEqual(a, b);
    assert.deepEqual([...generateResidents(10, 42)], a.slice(0, 10), 'a shorter run is a prefix');
    const c = [...generateResidents(2000, 43)];
    assert.notDeepEqual(
      c.map((r) => r.pin),
      a.map((r) => r.pin),
    );
  });

  it('gives every resident a valid number, unique within the generation', () => {
    const pins = new Set<string>();
    let n = 0;
    for (const r of generateResidents(50_000, 7)) {
      assert.equal(checkPin(r.pin, r.birthDate, r.sex), null, `${r.pin} ${r.birthDate} ${r.sex}`);
      pins.add(r.pin);
      n++;
    }
    assert.equal(n, 50_000);
    assert.equal(pins.size, 50_000);
  });

  it('writes plausible Vietnamese residents in NFC', () => {
    const residents = [...generateResidents(5000, 1)];
    let deceased = 0;
    for (const r of residents) {
      for (const s of [r.fullName, r.familyName, r.middleName, r.givenName, r.placeOfOrigin]) {
        if (s !== null) assert.equal(s, s.normalize('NFC'));
      }
      assert.ok(FAMILY.has(r.familyName), r.familyName);
      assert.equal(r.fullName, [r.familyName, r.middleName, r.givenName].filter(Boolean).join(' '));
      assert.match(r.birthDate, /^(19[3-9]\d|20[0-2]\d)-\d\d-\d\d$/);
      assert.ok(r.birthDate >= '1930-01-01' && r.birthDate <= '2024-12-31', r.birthDate);
      assert.ok(!Number.isNaN(Date.parse(r.birthDate)));
      assert.ok(['male', 'female'].includes(r.sex));
      assert.ok(PROVINCE_NAMES.has(r.placeOfOrigin!));
      assert.ok(PROVINCE_NAMES.has(r.permanentResidence!.province));
      assert.match(r.permanentResidence!.ward!, /^(Phường|Xã) /);
      assert.ok(r.currentResidence?.street);
      assert.equal(r.nationality, 'VN');
      if (r.status === 'deceased') deceased++;
      else assert.equal(r.status, 'active');
    }
    assert.ok(deceased > 0 && deceased < residents.length * 0.1, `${deceased} deceased`);
    assert.ok(residents.some((r) => r.middleName === 'Thị' && r.sex === 'female'));
  });

  it('gives about 95% of living residents aged 14 or more a mobile number, and none to children or the dead', () => {
    const bornBy = `${Number(GENERATED_AS_OF.slice(0, 4)) - 14}${GENERATED_AS_OF.slice(4)}`; // 14 on GENERATED_AS_OF
    let adults = 0;
    let withPhone = 0;
    let children = 0;
    const prefixes = new Set<string>();
    const phones = new Set<string>();
    for (const r of generateResidents(20_000, 11)) {
      if (r.phone !== null) {
        assert.match(r.phone, /^\+84[35789]\d{8}$/);
        prefixes.add(r.phone.slice(3, 4));
        phones.add(r.phone);
      }
      if (r.birthDate > bornBy) {
        children++;
        assert.equal(r.phone, null, `under 14: ${r.birthDate}`);
      } else if (r.status === 'deceased') {
        assert.equal(r.phone, null);
      } else {
        adults++;
        if (r.phone !== null) withPhone++;
      }
    }
    assert.ok(children > 1000, `${children} children`);
    const share = withPhone / adults;
    assert.ok(share > 0.93 && share < 0.97, `${(share * 100).toFixed(1)}% of living adults have a phone`);
    assert.deepEqual([...prefixes].sort(), ['3', '5', '7', '8', '9']);
    assert.ok(phones.size > withPhone * 0.99, 'numbers are random, not shared');
  });

  it('is lazy: the first resident of a billion comes at once', () => {
    const t0 = performance.now();
    const first = generateResidents(1_000_000_000, 1).next();
    assert.equal(first.done, false);
    // An eager generator of a billion residents would take hours; a lazy one answers in microseconds. The bound
    // is generous so a busy machine cannot fail it, and still tells the two apart.
    assert.ok(performance.now() - t0 < 5000);
  });

  for (const format of ['csv', 'ndjson'] as const) {
    it(`writes ${format} that the importer reads back unchanged`, () => {
      if (format === 'csv') assert.equal(REGISTRY_CSV_HEADER, `${REGISTRY_COLUMNS.join(',')}\n`);
      for (const r of generateResidents(500, 3)) {
        const line = formatRecord(recordOf(r), format);
        assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
        const fields = (format === 'csv' ? parseCsvLine : parseNdjsonLine)(line.slice(0, -1));
        assert.ok(typeof fields !== 'string', String(fields));
        const result = validateRecord(fields, 2, '2026-01-01');
        assert.ok(result.ok, result.ok ? '' : result.reason);
        const record = recordOf(r);
        assert.deepEqual(
          result.resident.values,
          REGISTRY_COLUMNS.map((c) => record[c] || null),
        );
      }
    });
  }

  it('quotes CSV fields that hold commas or quotes', () => {
    const [r] = [...generateResidents(1, 9)];
    const line = formatRecord(
      recordOf({ ...r!, currentResidence: { province: 'Hà Nội', street: '12, ngõ "Trúc Lạc"' } }),
      'csv',
    );
    assert.match(line, /,"12, ngõ ""Trúc Lạc""",/);
    const fields = parseCsvLine(line.trimEnd());
    assert.ok(Array.isArray(fields));
    assert.equal(fields[REGISTRY_COLUMNS.indexOf('current_street')], '12, ngõ "Trúc Lạc"');
  });
});
