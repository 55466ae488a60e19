/** Personal identification numbers (Circular 59/2021/TT-BCA): table-driven checks of province, century, year, sex. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPin, decodePin, PROVINCES, pinPrefix } from '../src/registry/index.ts';

describe('personal identification number', () => {
  it('knows the 63 province codes', () => {
    assert.equal(PROVINCES.size, 63);
    assert.equal(PROVINCES.get('001'), 'Hà Nội');
    assert.equal(PROVINCES.get('079'), 'Hồ Chí Minh');
  });

  for (const [pin, birth, sex, expected] of [
    ['001090012345', '1990-05-12', 'male', null],
    ['001190012345', '1990-05-12', 'female', null],
    ['079203000001', '2003-01-01', 'male', null],
    ['079303000001', '2003-01-01', 'female', null],
    ['048400000001', '2100-01-01', 'male', null],
    ['048500000001', '2100-01-01', 'female', null],
    ['001090012345', '1990-05-12', 'female', 'sex_mismatch'],
    ['001091012345', '1990-05-12', 'male', 'year_mismatch'],
    ['001290012345', '1990-05-12', 'male', 'century_mismatch'],
    ['003090012345', '1990-05-12', 'male', 'unknown_province'],
    ['000090012345', '1990-05-12', 'male', 'unknown_province'],
    ['00109001234', '1990-05-12', 'male', 'not_12_digits'],
    ['00109001234a', '1990-05-12', 'male', 'not_12_digits'],
    ['００1090012345', '1990-05-12', 'male', 'not_12_digits'],
  ] as const) {
    it(`${pin} born ${birth} ${sex}: ${expected ?? 'valid'}`, () => {
      assert.equal(checkPin(pin, birth, sex), expected);
    });
  }

  it('encodes and decodes century and sex consistently', () => {
    for (const year of [1900, 1999, 2000, 2099, 2100, 2250, 2399]) {
      for (const sex of ['male', 'female'] as const) {
        const pin = `${pinPrefix('001', year, sex)}123456`;
        assert.deepEqual(decodePin(pin), { province: '001', sex, birthYear: year });
      }
    }
  });
});
