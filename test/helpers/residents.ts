/** Synthetic residents for tests: the name split into family, middle and given names as the registry keeps them. */
import type { NewResident } from '../../src/registry/index.ts';

/** A resident from a full name and a birth date (YYYY-MM-DD); male, active, no residence, no phone unless given. */
export function resident(
  pin: string,
  fullName: string,
  birthDate: string,
  more: { sex?: 'male' | 'female'; status?: string; phone?: string | null } = {},
): NewResident & { phone: string | null } {
  const [familyName, ...rest] = fullName.split(' ');
  return {
    pin,
    fullName,
    familyName: familyName!,
    middleName: rest.slice(0, -1).join(' ') || null,
    givenName: rest.at(-1)!,
    birthDate,
    sex: more.sex ?? 'male',
    placeOfOrigin: null,
    permanentResidence: null,
    currentResidence: null,
    status: more.status ?? 'active',
    phone: more.phone ?? null,
  };
}
