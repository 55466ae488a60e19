/**
 * The 12-digit personal identification number (Circular 59/2021/TT-BCA):
 * digits 1-3 the province where the birth was registered, digit 4 century and sex (0/1: 1900s male/female, 2/3:
 * 2000s, 4/5: 2100s, 6/7: 2200s, 8/9: 2300s), digits 5-6 the last two digits of the birth year, 7-12 random.
 */
import { PROVINCES } from './provinces.ts';

/** Why a number is not valid for a record; null when it is. */
export type PinProblem = 'not_12_digits' | 'unknown_province' | 'century_mismatch' | 'year_mismatch' | 'sex_mismatch';

/** True when `s` has the shape of a personal identification number (12 ASCII digits). */
export function isPinShape(s: string): boolean {
  return /^[0-9]{12}$/.test(s);
}

/** Decodes century, sex and year fragment from a number of the right shape. */
export function decodePin(pin: string): { province: string; sex: 'male' | 'female'; birthYear: number } | null {
  if (!isPinShape(pin)) return null;
  const d = Number(pin[3]);
  const century = 1900 + Math.floor(d / 2) * 100;
  return {
    province: pin.slice(0, 3),
    sex: d % 2 === 0 ? 'male' : 'female',
    birthYear: century + Number(pin.slice(4, 6)),
  };
}

/** Checks a number against the record's own birth date (YYYY-MM-DD) and sex. */
export function checkPin(pin: string, birthDate: string, sex: 'male' | 'female'): PinProblem | null {
  const decoded = decodePin(pin);
  if (!decoded) return 'not_12_digits';
  if (!PROVINCES.has(decoded.province)) return 'unknown_province';
  const year = Number(birthDate.slice(0, 4));
  if (Math.floor(year / 100) !== Math.floor(decoded.birthYear / 100)) return 'century_mismatch';
  if (year !== decoded.birthYear) return 'year_mismatch';
  if (sex !== decoded.sex) return 'sex_mismatch';
  return null;
}

/** Builds the first six digits for a province, birth year and sex (the inverse of decodePin). */
export function pinPrefix(province: string, birthYear: number, sex: 'male' | 'female'): string {
  const centuryDigit = (Math.floor(birthYear / 100) - 19) * 2 + (sex === 'female' ? 1 : 0);
  return `${province}${centuryDigit}${String(birthYear % 100).padStart(2, '0')}`;
}

/** A name as compared for identity proofing: NFC, case-folded (Vietnamese rules), whitespace collapsed. */
export function comparableName(name: string): string {
  return name.normalize('NFC').toLocaleLowerCase('vi').replace(/\s+/gu, ' ').trim();
}
