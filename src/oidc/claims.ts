/**
 * What a portal may learn about a citizen: OIDC standard claims built from the registry record.
 * `sub` is the account's internal identifier, never the personal identification number (which can be reissued).
 */
import type { Kysely } from 'kysely';
import type { Account, FindAccount } from 'oidc-provider';
import { type AccountProfile, findAccountProfile } from '../accounts/index.ts';
import type { DB, Residence } from '../db/index.ts';
import { prefetchedAccount } from './adapter.ts';

/**
 * Scopes and the claims each releases (and so `claims_supported`). No `updated_at`: the registry record's update time
 * is not part of what an account exposes, and discovery advertises only what can be released.
 */
export const SCOPE_CLAIMS = {
  profile: ['name', 'family_name', 'middle_name', 'given_name', 'birthdate', 'gender'],
  address: ['address'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  /** The 12-digit personal identification number: only for portals registered with this scope. */
  national_id: ['personal_identification_number'],
} as const;

/** Scopes a client may receive unless registered otherwise (never national_id). */
export const DEFAULT_CLIENT_SCOPES = ['openid', 'offline_access', 'profile', 'address', 'email', 'phone'];

/**
 * Claims a client may receive for a token's scope: those of scopes both granted (requested and consented) and
 * permitted at registration. The claims parameter can narrow this, never widen it.
 */
export function releasableClaims(grantedScope: string, permittedScope: string | undefined): Set<string> {
  const permitted = new Set((permittedScope ?? DEFAULT_CLIENT_SCOPES.join(' ')).split(' '));
  const out = new Set<string>(['sub']);
  for (const s of grantedScope.split(' ')) {
    if (permitted.has(s) && s in SCOPE_CLAIMS) for (const c of SCOPE_CLAIMS[s as keyof typeof SCOPE_CLAIMS]) out.add(c);
  }
  return out;
}

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
    personal_identification_number: r.pin,
    phone_number: p.phoneNumber ?? undefined,
    phone_number_verified: p.phoneNumber ? false : undefined,
  };
}

/**
 * The account oidc-provider loaded in this request (findAccount below), with the level and sandbox flag read in the
 * same statement as its claims.
 */
type LoadedAccount = Account & { level: number; testCitizen: boolean };

/**
 * The account `accountId` as loaded earlier in this request (the authorization endpoint loads the session's account
 * before the grant and the prompt checks), if it is that one: its level and sandbox flag need no statement of their
 * own. Undefined when the request has not loaded it (or it is not active: then nothing was loaded): read it then.
 * Per request only: nothing outlives the request that read it.
 */
export function loadedAccount(
  ctx: { oidc?: { account?: Account } } | undefined,
  accountId: string,
): LoadedAccount | undefined {
  const account = ctx?.oidc?.account as Partial<LoadedAccount> | undefined;
  return account?.accountId === accountId &&
    typeof account.level === 'number' &&
    typeof account.testCitizen === 'boolean'
    ? (account as LoadedAccount)
    : undefined;
}

/** oidc-provider's findAccount: only active accounts of active residents exist for the provider. */
export function findAccount(db: Kysely<DB>): FindAccount {
  return async (ctx, sub): Promise<LoadedAccount | undefined> => {
    // Read with the request's token, when there is one (adapter.ts: the same snapshot as the token).
    const profile = await findAccountProfile(db, sub, prefetchedAccount(sub));
    if (profile?.status !== 'active' || profile.resident.status !== 'active') return undefined;
    const permitted = (ctx.oidc?.client as { scope?: string } | undefined)?.scope;
    return {
      accountId: profile.accountId,
      level: profile.level,
      testCitizen: profile.testCitizen,
      claims: (_use, scope) => {
        const allowed = releasableClaims(scope ?? '', permitted);
        const all = claimsOf(profile);
        return Object.fromEntries(Object.entries(all).filter(([k]) => allowed.has(k))) as { sub: string };
      },
    };
  };
}
