/**
 * Passkeys (WebAuthn, with @simplewebauthn/server): registration on /account, usernameless login and step-up.
 *
 * Threat note: a challenge is single-use, short-lived and bound server-side to the interaction or session that asked
 * for it (any node checks it in PostgreSQL); origin and RP ID are checked against the issuer, so a look-alike site
 * gets nothing it can replay. User verification is required. A passkey proves level 2 only when it was registered by
 * a level-2 session at most 10 minutes old of a level-2 account, and never above the account's current level. A sign
 * count going backwards (non-zero counter) is refused and flagged: a cloned authenticator.
 */
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import {
  countPasskeys,
  deletePasskeyRow,
  insertPasskey,
  markCloneSuspected,
  markPasskeyUsed,
  type PasskeyRecord,
  putChallenge,
  renamePasskeyRow,
  selectPasskey,
  selectPasskeys,
  takeChallenge,
} from './passkeys.repository.ts';

/** At most this many passkeys per account. */
export const MAX_PASSKEYS = 10;
/** A session may register a level-2 passkey this long after its level-2 login. */
export const FRESH_LEVEL2_MS = 10 * 60_000;
/** How long a challenge may be answered. */
const CHALLENGE_TTL_MS = 5 * 60_000;

/** The relying party: the issuer's host is the RP ID, its origin the only accepted origin. */
export interface RelyingParty {
  rpID: string;
  origin: string;
  rpName: string;
}

/** The relying party of an issuer URL. */
export function relyingParty(issuer: string): RelyingParty {
  const u = new URL(issuer);
  return { rpID: u.hostname, origin: u.origin, rpName: 'dinhdanh' };
}

/** A passkey as pages show it. */
export interface PasskeyView {
  id: string;
  name: string;
  synced: boolean;
  level: number;
  createdAt: Date;
  lastUsedAt: Date | null;
  cloneSuspected: boolean;
}

/**
 * What a passkey login proves (acr level and RFC 8176 `amr`): `swk` for a synced (backup-eligible or backed-up)
 * credential, `hwk` for a device-bound one; `user` when the authenticator verified the person; level 2 (`mfa`) only
 * for a level-2 passkey of a level-2 account with user verification, else level 1. Such a level-2 login is also
 * phishing-resistant (the origin-bound signature is the proof), unless `deviceBoundOnly` (PHISHING_RESISTANT_DEVICE_BOUND)
 * and the passkey is synced.
 */
export function passkeyAssurance(p: {
  accountLevel: number;
  passkeyLevel: number;
  userVerified: boolean;
  backupEligible: boolean;
  backedUp: boolean;
  deviceBoundOnly?: boolean;
}): { level: 1 | 2; amr: string[]; phishingResistant: boolean } {
  const synced = p.backupEligible || p.backedUp;
  const key = synced ? 'swk' : 'hwk';
  const level2 = p.userVerified && p.passkeyLevel >= 2 && p.accountLevel >= 2;
  if (level2) return { level: 2, amr: [key, 'user', 'mfa'], phishingResistant: !(p.deviceBoundOnly && synced) };
  return { level: 1, amr: p.userVerified ? [key, 'user'] : [key], phishingResistant: false };
}

const view = (p: PasskeyRecord): PasskeyView => ({
  id: p.id,
  name: p.name,
  synced: p.backupEligible || p.backedUp,
  level: p.level,
  createdAt: p.createdAt,
  lastUsedAt: p.lastUsedAt,
  cloneSuspected: !!p.cloneSuspectedAt,
});

/** The account's passkeys, oldest first. */
export async function listPasskeys(db: Kysely<DB>, accountId: string): Promise<PasskeyView[]> {
  return (await selectPasskeys(db, accountId)).map(view);
}

/** Registration options for a session (`binding`); refused when the account has MAX_PASSKEYS already. */
export async function registrationOptions(
  db: Kysely<DB>,
  rp: RelyingParty,
  binding: string,
  account: { accountId: string; userName: string; displayName: string },
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await selectPasskeys(db, account.accountId);
  if (existing.length >= MAX_PASSKEYS) throw new AppError('conflict', `at most ${MAX_PASSKEYS} passkeys per account`);
  const options = await generateRegistrationOptions({
    rpName: rp.rpName,
    rpID: rp.rpID,
    userName: account.userName,
    userDisplayName: account.displayName,
    userID: new TextEncoder().encode(account.accountId),
    attestationType: 'none',
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
  });
  await putChallenge(db, binding, options.challenge, account.accountId, new Date(Date.now() + CHALLENGE_TTL_MS));
  return options;
}

/** Why a registration was refused (the route audits it). */
export type RegistrationFailure = 'no_challenge' | 'invalid_response' | 'too_many';

/**
 * Verifies a registration answer and stores the passkey; `level` is what it may prove (the route decides it from
 * the session: 2 only for a fresh level-2 session of a level-2 account).
 */
export async function registerPasskey(
  db: Kysely<DB>,
  rp: RelyingParty,
  binding: string,
  accountId: string,
  response: unknown,
  name: string,
  level: 1 | 2,
): Promise<{ ok: true; passkey: PasskeyView } | { ok: false; reason: RegistrationFailure }> {
  const challenge = await takeChallenge(db, binding);
  if (!challenge || challenge.accountId !== accountId) return { ok: false, reason: 'no_challenge' };
  let info: Awaited<ReturnType<typeof verifyRegistrationResponse>>['registrationInfo'];
  try {
    const result = await verifyRegistrationResponse({
      response: response as RegistrationResponseJSON,
      expectedChallenge: challenge.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpID,
      requireUserVerification: true,
    });
    info = result.verified ? result.registrationInfo : undefined;
  } catch {
    info = undefined;
  }
  if (!info) return { ok: false, reason: 'invalid_response' };
  const record = {
    id: info.credential.id,
    accountId,
    publicKey: info.credential.publicKey,
    signCount: info.credential.counter,
    transports: info.credential.transports ?? [],
    aaguid: info.aaguid,
    backupEligible: info.credentialDeviceType === 'multiDevice',
    backedUp: info.credentialBackedUp,
    level,
    name: name.trim().slice(0, 60) || 'Passkey',
  };
  if (!(await insertPasskey(db, record, MAX_PASSKEYS))) return { ok: false, reason: 'too_many' };
  return { ok: true, passkey: view({ ...record, createdAt: new Date(), lastUsedAt: null, cloneSuspectedAt: null }) };
}

/**
 * Authentication options for an interaction (`binding`): usernameless (any discoverable credential) or, for a
 * step-up, only the account's own passkeys (those `only` keeps, when given).
 */
export async function authenticationOptions(
  db: Kysely<DB>,
  rp: RelyingParty,
  binding: string,
  accountId: string | null,
  only?: (p: PasskeyView) => boolean,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const allow = accountId
    ? (await selectPasskeys(db, accountId))
        .filter((p) => !only || only(view(p)))
        .map((p) => ({ id: p.id, transports: p.transports }))
    : [];
  const options = await generateAuthenticationOptions({
    rpID: rp.rpID,
    userVerification: 'required',
    allowCredentials: allow,
  });
  await putChallenge(db, binding, options.challenge, accountId, new Date(Date.now() + CHALLENGE_TTL_MS));
  return options;
}

/** Why an assertion was refused (the route audits it). */
export type AssertionFailure = 'no_challenge' | 'unknown_passkey' | 'wrong_account' | 'invalid_response' | 'sign_count';

/** A verified assertion: whose passkey, and what it proves. */
export interface PasskeyLogin {
  accountId: string;
  passkeyId: string;
  passkeyLevel: number;
  userVerified: boolean;
  backupEligible: boolean;
  backedUp: boolean;
}

/** The credential id an answer names (for limits and the audit trail), bounded. */
export const credentialIdOf = (response: unknown): string => {
  const id = (response as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id.slice(0, 200) : '';
};

/** Verifies an assertion for `binding` (the challenge is used up whatever the outcome). */
export async function verifyPasskeyAssertion(
  db: Kysely<DB>,
  rp: RelyingParty,
  binding: string,
  response: unknown,
): Promise<
  { ok: true; login: PasskeyLogin } | { ok: false; reason: AssertionFailure; passkeyId?: string; accountId?: string }
> {
  const challenge = await takeChallenge(db, binding);
  if (!challenge) return { ok: false, reason: 'no_challenge' };
  const id = credentialIdOf(response);
  const passkey = id ? await selectPasskey(db, id) : undefined;
  if (!passkey) return { ok: false, reason: 'unknown_passkey' };
  const who = { passkeyId: passkey.id, accountId: passkey.accountId };
  if (challenge.accountId && challenge.accountId !== passkey.accountId)
    return { ok: false, reason: 'wrong_account', ...who };
  try {
    const result = await verifyAuthenticationResponse({
      response: response as AuthenticationResponseJSON,
      expectedChallenge: challenge.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpID,
      requireUserVerification: true,
      credential: {
        id: passkey.id,
        publicKey: passkey.publicKey as never,
        counter: passkey.signCount,
        transports: passkey.transports as never,
      },
    });
    if (!result.verified) return { ok: false, reason: 'invalid_response', ...who };
    const info = result.authenticationInfo;
    await markPasskeyUsed(db, passkey.id, info.newCounter, info.credentialBackedUp);
    return {
      ok: true,
      login: {
        accountId: passkey.accountId,
        passkeyId: passkey.id,
        passkeyLevel: passkey.level,
        userVerified: info.userVerified,
        backupEligible: passkey.backupEligible || info.credentialDeviceType === 'multiDevice',
        backedUp: info.credentialBackedUp,
      },
    };
  } catch (err) {
    // The library refuses a counter that did not move forward (when either side is non-zero): a possible clone.
    if (err instanceof Error && /counter/i.test(err.message)) {
      await markCloneSuspected(db, passkey.id);
      return { ok: false, reason: 'sign_count', ...who };
    }
    return { ok: false, reason: 'invalid_response', ...who };
  }
}

/** Renames one of the account's passkeys. */
export async function renamePasskey(db: Kysely<DB>, accountId: string, id: string, name: string): Promise<boolean> {
  const clean = name.trim().slice(0, 60);
  if (!clean) return false;
  return renamePasskeyRow(db, accountId, id.slice(0, 200), clean);
}

/** Removes one of the account's passkeys. */
export const removePasskey = (db: Kysely<DB>, accountId: string, id: string) =>
  deletePasskeyRow(db, accountId, id.slice(0, 200));

/** How many passkeys the account has. */
export const passkeyCount = countPasskeys;
