/**
 * What a portal may learn about a citizen: OIDC standard claims built from the registry record.
 * `sub` is the account's internal identifier, never the personal identification number (which can be reissued).
 */
import type { Kysely } from 'kysely';
import type { Account, FindAccount } from 'oidc-provider';
import { type AccountProfile, findAccountProfile } from '../accounts/index.ts';
import type { DB, Residence } from '../db/index.ts';

/** Scopes and the claims each releases. */
export const SCOPE_CLAIMS = {
  profile: ['name', 'family_name', 'middle_name', 'given_name', 'birthdate', 'gender', 'updated_at'],
  address: ['address'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
} as const;

function address(r: Residence | null) {
  if (!r) return undefined;
  const parts = [r.street, r.ward, r.district, r.province].filter(Boolean);
  return {
    formatted: parts.join(', '),
    street_address: r.street,
    locality: r.ward ?? r.district,
    region: r.province,
    country: 'VN',
  };
}

/** Every claim dinhdanh can release for an account; oidc-provider filters them by scope and request. */
export function claimsOf(p: AccountProfile): { sub: string } & Record<string, unknown> {
  const r = p.resident;
  return {
    sub: p.accountId,
    name: r.fullName,
    family_name: r.familyName,
    middle_name: r.middleName ?? undefined,
    given_name: r.givenName,
    birthdate: r.birthDate,
    gender: r.sex,
    address: address(r.permanentResidence),
    email: p.email ?? undefined,
    email_verified: p.email ? false : undefined,
    phone_number: p.phoneNumber ?? undefined,
    phone_number_verified: p.phoneNumber ? false : undefined,
  };
}

/** oidc-provider's findAccount: only active accounts of active residents exist for the provider. */
export function findAccount(db: Kysely<DB>): FindAccount {
  return async (_ctx, sub): Promise<Account | undefined> => {
    const profile = await findAccountProfile(db, sub);
    if (profile?.status !== 'active' || profile.resident.status !== 'active') return undefined;
    return { accountId: profile.accountId, claims: () => claimsOf(profile) as { sub: string } };
  };
}
