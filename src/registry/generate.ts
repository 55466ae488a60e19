/**
 * Synthetic residents for demos, tests and benchmarks: Vietnamese names with diacritics (NFC), birth dates 1930-2024,
 * real province names, personal identification numbers that pass `checkPin`, and mobile numbers for most living
 * adults. Deterministic: the same count and seed give the same residents, in the same order, on every machine.
 */
import type { Residence } from '../db/index.ts';
import { pinPrefix } from './pin.ts';
import { PROVINCES } from './provinces.ts';
import type { NewResident } from './residents.repository.ts';

/** A generated resident: a NewResident with status, nationality and phone always set. */
export type GeneratedResident = NewResident & {
  status: 'active' | 'deceased';
  nationality: string;
  phone: string | null;
};

/** mulberry32: a small, fast, seedable 32-bit PRNG returning floats in [0, 1). Not for secrets. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nfc = (list: string[]) => list.map((s) => s.normalize('NFC'));

// Family names with their approximate share of the population (percent).
const FAMILY: [string, number][] = [
  ['Nguyễn', 38],
  ['Trần', 11],
  ['Lê', 9.5],
  ['Phạm', 7],
  ['Hoàng', 3],
  ['Huỳnh', 2.5],
  ['Phan', 4.5],
  ['Vũ', 2],
  ['Võ', 2],
  ['Đặng', 2.1],
  ['Bùi', 2],
  ['Đỗ', 1.4],
  ['Hồ', 1.3],
  ['Ngô', 1.3],
  ['Dương', 1],
  ['Lý', 0.5],
  ['Đinh', 0.7],
  ['Trịnh', 0.6],
  ['Mai', 0.5],
  ['Trương', 0.6],
];
const FAMILY_NAMES = nfc(FAMILY.map(([n]) => n));
let familyTotal = 0;
const FAMILY_CUMULATIVE = FAMILY.map(([, w]) => (familyTotal += w));

const MIDDLE = {
  male: nfc(['Văn', 'Văn', 'Văn', 'Hữu', 'Đức', 'Minh', 'Quốc', 'Thanh', 'Công', 'Quang', 'Gia', 'Hoàng', 'Anh']),
  female: nfc(['Thị', 'Thị', 'Thị', 'Ngọc', 'Thu', 'Thanh', 'Minh', 'Phương', 'Hồng', 'Kim', 'Bảo', 'Thị Thu']),
};
const GIVEN = {
  male: nfc(
    'An Bình Cường Dũng Đạt Hải Hiếu Hùng Huy Khang Khoa Khánh Long Minh Nam Nghĩa Phúc Quân Quý Sơn Tài Thắng Thành Toàn Trung Tuấn Việt Vinh Vũ Lộc'.split(
      ' ',
    ),
  ),
  female: nfc(
    'Anh Châu Dung Giang Hà Hạnh Hằng Hoa Hương Lan Linh Loan Mai My Nga Ngân Nhung Oanh Phương Quỳnh Thảo Trang Trinh Tuyết Vy Yến Hiền Huyền Thư'.split(
      ' ',
    ),
  ),
};
const WARD_NAMES = nfc(
  'Tân Định|Bến Nghé|Hàng Bạc|Láng Hạ|Phú Mỹ|An Khánh|Hòa Bình|Tân Phong|Long Thạnh|Thới An|Đông Hòa|Bình An|Phước Long|Trung Hòa|Nghĩa Đô|Quang Trung|Hiệp Phước|Vĩnh Ninh|Thạch Bàn|Đồng Tâm|Tân Lập|Xuân Phương|Cẩm Lệ|Hòa Khánh|Phú Lợi'.split(
    '|',
  ),
);
const STREETS = nfc(
  'Lê Lợi|Trần Hưng Đạo|Nguyễn Huệ|Hai Bà Trưng|Lý Thường Kiệt|Quang Trung|Điện Biên Phủ|Hùng Vương|Phan Chu Trinh|Nguyễn Trãi|Lê Duẩn|Bà Triệu|Trần Phú|Nguyễn Du|Võ Thị Sáu|Lạc Long Quân'.split(
    '|',
  ),
);
const VILLAGES = nfc('Đông|Tây|Nam|Bắc|Thượng|Hạ|Trung|Phú Xuân|Tân An|Hòa Lạc|Bình Minh|An Phú'.split('|'));

const PROVINCE_CODES = [...PROVINCES.keys()];
// Where many people moved to: current residence is often one of these.
const CITIES = ['001', '079', '048', '031', '092', '074'];
const ALPHABET_SIZE = 1_000_000; // the 6 random digits of a personal identification number

/**
 * The day a generated population is as of (fixed, so a seed gives the same residents on any day): who is 14 or older
 * on it may have a mobile subscription of their own.
 */
export const GENERATED_AS_OF = '2026-01-01';
/** Born on or before this day: 14 or older on GENERATED_AS_OF. */
const PHONE_BORN_BY = `${Number(GENERATED_AS_OF.slice(0, 4)) - 14}${GENERATED_AS_OF.slice(4)}`;
/** Share of living adults with a registered mobile number. */
const PHONE_SHARE = 0.95;
/** First digit after +84 (03, 05, 07, 08, 09 nationally), one per 5% of subscriptions: 9 40%, 3 30%, 8 15%, ... */
const MOBILE_PREFIXES = '99999999333333888775';

/**
 * Yields `count` residents generated from `seed` (an unsigned 32-bit integer), lazily: a million residents use no
 * more memory than ten. Numbers are unique within one generation: for each 6-digit prefix (province, century/sex,
 * year) the last 6 digits are a seeded permutation of a per-prefix counter, so two residents never share a number.
 */
export function* generateResidents(count: number, seed: number): Generator<GeneratedResident> {
  const rand = mulberry32(seed);
  // Phone numbers come from a stream of their own: the rest of each resident is what this seed gave before phones.
  const phoneRand = mulberry32(seed ^ 0x9e3779b9);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  // An affine permutation of 0..999999: the multiplier must be coprime with 10^6 (odd, not a multiple of 5).
  let multiplier = Math.floor(rand() * ALPHABET_SIZE) | 1;
  if (multiplier % 5 === 0) multiplier += 2;
  const used = new Map<string, number>(); // prefix -> residents with that prefix so far (about 12,000 prefixes)

  for (let i = 0; i < count; i++) {
    const sex = rand() < 0.5 ? 'male' : 'female';
    const year = 1930 + Math.floor(rand() * 95);
    const birthProvince = pick(PROVINCE_CODES);
    const prefix = pinPrefix(birthProvince, year, sex);
    const n = used.get(prefix) ?? 0;
    if (n >= ALPHABET_SIZE) {
      i--; // this prefix is full (never in practice): draw another resident
      continue;
    }
    used.set(prefix, n + 1);
    const offset = (Number(prefix) * 7919 + seed) % ALPHABET_SIZE;
    const suffix = (multiplier * n + offset) % ALPHABET_SIZE;
    const pin = `${prefix}${String(suffix).padStart(6, '0')}`;

    const daysInYear = year % 4 === 0 ? 366 : 365; // 1930-2024: no century exceptions
    const birthDate = new Date(Date.UTC(year, 0, 1 + Math.floor(rand() * daysInYear))).toISOString().slice(0, 10);

    const f = rand() * familyTotal;
    const familyName = FAMILY_NAMES[FAMILY_CUMULATIVE.findIndex((c) => f < c)]!;
    const middleName = rand() < 0.05 ? null : pick(MIDDLE[sex]);
    const givenName = pick(GIVEN[sex]);
    const fullName = [familyName, middleName, givenName].filter(Boolean).join(' ');

    const home = rand() < 0.85 ? birthProvince : pick(PROVINCE_CODES);
    const current = rand() < 0.8 ? home : pick(CITIES);
    const permanentResidence = residence(home, rand, pick);
    const currentResidence = current === home ? permanentResidence : residence(current, rand, pick);

    const placeOfOrigin = PROVINCES.get(rand() < 0.9 ? birthProvince : pick(PROVINCE_CODES))!;
    // Older people are more likely to have died: about 11% of those born in 1930, 1% of the young.
    const deathChance = 0.01 + (0.1 * Math.max(0, 1960 - year)) / 30;
    const status = rand() < deathChance ? 'deceased' : 'active';
    const phone = status === 'active' && birthDate <= PHONE_BORN_BY ? mobileNumber(phoneRand) : null;
    yield {
      pin,
      fullName,
      familyName,
      middleName,
      givenName,
      birthDate,
      sex,
      nationality: 'VN',
      placeOfOrigin,
      permanentResidence,
      currentResidence,
      status,
      phone,
    };
  }
}

/** A synthetic mobile number (`+84` and 9 digits) for PHONE_SHARE of calls, else null. Always draws three values. */
function mobileNumber(rand: () => number): string | null {
  const has = rand() < PHONE_SHARE;
  const prefix = MOBILE_PREFIXES[Math.floor(rand() * MOBILE_PREFIXES.length)];
  const digits = String(Math.floor(rand() * 100_000_000)).padStart(8, '0');
  return has ? `+84${prefix}${digits}` : null;
}

function residence(code: string, rand: () => number, pick: <T>(list: readonly T[]) => T): Residence {
  const urban = CITIES.includes(code) || rand() < 0.4;
  const ward = urban
    ? rand() < 0.3
      ? `Phường ${1 + Math.floor(rand() * 15)}`
      : `Phường ${pick(WARD_NAMES)}`
    : `Xã ${pick(WARD_NAMES)}`;
  const street = urban
    ? `${1 + Math.floor(rand() * 300)} ${pick(STREETS)}`
    : `${rand() < 0.5 ? 'Thôn' : 'Ấp'} ${pick(VILLAGES)}`;
  return { province: PROVINCES.get(code)!, ward, street };
}
