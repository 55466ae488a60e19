/**
 * Staff acts: each one the service call and its audit event in one transaction (audit/audited.ts). The command line,
 * the admin API and the console call these, so none of them has logic of its own beyond parsing its input and
 * deciding who may act (staff/authorize); the actor says who acted, in which role, from where.
 */
import type { Kysely } from 'kysely';
import {
  accountIdForPin,
  codeBook,
  issueActivationCode,
  reactivateAccount,
  resetTotp,
  showAccount,
  suspendAccount,
} from '../accounts/index.ts';
import { type Actor, actorDetails, audited, recordEvent, recordVerification, verifyChain } from '../audit/index.ts';
import {
  addClient,
  type ClientChanges,
  type NewClient,
  rotateClientSecret,
  setClientDisabled,
  setClientEnvironment,
  updateClient,
} from '../clients/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import {
  activateKey,
  deriveCodeKey,
  generateKey,
  loadSecretRoot,
  retireKey,
  revokeKey,
  rotateCookieKeys,
  rotateKey,
} from '../keys/index.ts';
import { findResident } from '../registry/index.ts';
import { grantRole, type RoleGrant, revokeRole } from '../staff/index.ts';

/** What the acts need. */
export interface ActDeps {
  db: Kysely<DB>;
  master: Buffer;
  /** Key lifetimes (KEY_* settings). */
  keys: Parameters<typeof activateKey>[2];
  /** Production rules for portal registration (https jwks_uri, not this machine). */
  production: boolean;
}

const PIN = /^\d{12}$/;
const checkPin = (pin: string) => {
  if (!PIN.test(pin)) throw new AppError('invalid_input', 'personal ID must be 12 digits');
};
const name = (a: Actor) => a.id.slice(0, 100);

// ---- citizens' accounts (officers) ----

/**
 * An officer looks an account up; the look-up of personal data is itself audited, and so is one that found nothing
 * (an officer probing which personal IDs have accounts leaves a trace: the pseudonym-free subject is the search).
 */
export async function viewAccount(d: ActDeps, actor: Actor, pin: string) {
  checkPin(pin);
  try {
    return await audited(d.db, actor, 'account.viewed', async (trx) => {
      const account = await showAccount(trx, pin);
      return { result: account, subject: account.accountId };
    });
  } catch (err) {
    if (err instanceof AppError && err.code === 'not_found')
      await recordEvent(d.db, {
        actor: { type: actor.type, id: actor.id },
        action: 'account.viewed',
        outcome: 'failure',
        reason: 'not_found',
        ip: actor.ip,
        details: { province: pin.slice(0, 3), ...actorDetails(actor) },
      });
    throw err;
  }
}

/** Refuses to leave the service without an active admin (nobody could grant roles again). */
async function keepAnAdmin(db: Kysely<DB>, accountId: string): Promise<void> {
  const admins = await db
    .selectFrom('staff_roles')
    .innerJoin('accounts', 'accounts.id', 'staff_roles.account_id')
    .select('accounts.id')
    .where('staff_roles.role', '=', 'admin')
    .where('accounts.status', '=', 'active')
    .forUpdate()
    .execute();
  if (admins.length === 1 && admins[0]!.id === accountId)
    throw new AppError('conflict', 'this is the last active admin: grant admin to someone else first');
}

/** After checking the citizen in person: a one-time activation code (15 minutes) the citizen enters on /account. */
export function verifyInPerson(d: ActDeps, actor: Actor, pin: string) {
  checkPin(pin);
  return audited(d.db, actor, 'account.verified_in_person', async (trx) => {
    const r = await issueActivationCode(trx, pin, name(actor));
    return { result: { activation_code: r.code, expires_at: r.expiresAt.toISOString() }, subject: r.accountId };
  });
}

/** After checking the citizen in person: a one-time password-reset code (60 minutes) for /recover/officer. */
export async function passwordResetCode(d: ActDeps, actor: Actor, pin: string) {
  checkPin(pin);
  const codeKey = deriveCodeKey(await loadSecretRoot(d.db, d.master));
  return audited(d.db, actor, 'account.reset_password', async (trx) => {
    const accountId = await accountIdForPin(trx, pin);
    const resident = await findResident(trx, { pin });
    const issued = await codeBook(trx, codeKey).issueOfficerCode({
      residentId: resident!.id,
      accountId,
      officer: name(actor),
    });
    return {
      result: { reset_code: issued.code, expires_at: issued.expiresAt.toISOString(), where: '/recover/officer' },
      subject: accountId,
      details: { expiresAt: issued.expiresAt.toISOString() },
    };
  });
}

/**
 * Asks every node to end these accounts' sessions (oidc's `requestSessionTermination`, in the act's transaction). The
 * oidc domain is loaded here, when an act needs it: it brings oidc-provider, about 0.4 s of CPU that a CLI command
 * whose act ends no session would pay at start (the test suite starts about 150 of them).
 */
async function endSessions(trx: Kysely<DB>, accountIds: string[], reason: string): Promise<void> {
  const { requestSessionTermination } = await import('../oidc/index.ts');
  await requestSessionTermination(trx, accountIds, reason);
}

/** Suspends an account; its sessions end (with back-channel logout). */
export function suspend(d: ActDeps, actor: Actor, pin: string) {
  checkPin(pin);
  return audited(d.db, actor, 'account.suspend', async (trx) => {
    await keepAnAdmin(trx, await accountIdForPin(trx, pin));
    const accountId = await suspendAccount(trx, pin, (ids) => endSessions(trx, ids, 'suspended'));
    return { result: { accountId, status: 'suspended' }, subject: accountId };
  });
}

/** Reactivates a suspended account. */
export function reactivate(d: ActDeps, actor: Actor, pin: string) {
  checkPin(pin);
  return audited(d.db, actor, 'account.reactivate', async (trx) => {
    const accountId = await reactivateAccount(trx, pin);
    return { result: { accountId, status: 'active' }, subject: accountId };
  });
}

/** A lost or stolen phone: TOTP and recovery codes removed; level 2 ends now, and every session that reached it. */
export function resetSecondFactor(d: ActDeps, actor: Actor, pin: string) {
  checkPin(pin);
  return audited(d.db, actor, 'account.reset-totp', async (trx) => {
    const accountId = await resetTotp(trx, pin);
    await endSessions(trx, [accountId], 'totp_reset');
    return { result: { accountId, level: 1 }, subject: accountId };
  });
}

/**
 * Lifts a temporary login lock. `unlock` works on the limiter's own connections, so it runs once the event is written
 * and before the commit (a failed audit write leaves the lock in place).
 */
export async function unlock(
  d: ActDeps,
  actor: Actor,
  pin: string,
  key: string,
  unlockKey: (k: string) => Promise<void>,
) {
  checkPin(pin);
  await audited(d.db, actor, 'account.unlocked', async () => ({
    result: undefined,
    subject: key,
    outside: () => unlockKey(key),
  }));
}

// ---- portals ----

/** What the audit trail says of a portal's keys: their kids, or where they are published. */
function keysOf(c: { jwks_uri?: string; jwks_kids?: string[] }) {
  return { ...(c.jwks_uri ? { jwksUri: c.jwks_uri } : {}), ...(c.jwks_kids ? { kids: c.jwks_kids } : {}) };
}

/** Registers a portal; returns it with its secret (shown once). */
export function registerClient(d: ActDeps, actor: Actor, input: NewClient, reason?: string) {
  return audited(d.db, actor, 'client.registered', async (trx) => {
    const client = await addClient(trx, input, { production: d.production });
    return {
      result: client,
      clientId: client.client_id,
      // Security staff registering a portal straight to production, or with national_id or implicit consent: why.
      reason: reason?.trim() || null,
      details: {
        name: client.client_name,
        redirectUris: client.redirect_uris,
        authMethod: client.token_endpoint_auth_method,
        environment: client.environment,
        ...(client.agency ? { agency: client.agency } : {}),
        ...keysOf(client),
      },
    };
  });
}

/** Changes a portal under the registration rules. */
export function changeClient(d: ActDeps, actor: Actor, clientId: string, changes: ClientChanges) {
  return audited(d.db, actor, 'client.updated', async (trx) => {
    const { client, changed } = await updateClient(trx, clientId, changes, { production: d.production });
    return { result: client, clientId, details: { changed, newSecret: !!client.client_secret, ...keysOf(client) } };
  });
}

/** A new secret (shown once); the current one keeps working for `graceSeconds`. */
export function rotateSecret(d: ActDeps, actor: Actor, clientId: string, graceSeconds: number) {
  return audited(d.db, actor, 'client.secret_rotated', async (trx) => {
    const rotated = await rotateClientSecret(trx, clientId, graceSeconds);
    return {
      result: rotated,
      clientId,
      details: { graceSeconds, previousValidUntil: rotated.previous_secret_valid_until },
    };
  });
}

/** Disables a portal (or enables it again). */
export function disableClient(d: ActDeps, actor: Actor, clientId: string, disabled: boolean) {
  return audited(d.db, actor, disabled ? 'client.disabled' : 'client.enabled', async (trx) => ({
    result: await setClientDisabled(trx, clientId, disabled),
    clientId,
  }));
}

/** Security staff move a portal to production (or back to the sandbox), with the reason recorded. */
export function approveClient(
  d: ActDeps,
  actor: Actor,
  clientId: string,
  environment: 'sandbox' | 'production',
  reason: string,
) {
  const why = reason.trim();
  if (why.length < 5 || why.length > 500) throw new AppError('invalid_input', 'reason must be 5 to 500 characters');
  return audited(d.db, actor, environment === 'production' ? 'client.approved' : 'client.sandboxed', async (trx) => ({
    result: await setClientEnvironment(trx, clientId, environment),
    clientId,
    reason: why,
    details: { environment },
  }));
}

// ---- keys ----

/** Stages a new signing key (published now, signs once activated). */
export function stageKey(d: ActDeps, actor: Actor, alg: string) {
  return audited(d.db, actor, 'key.generated', async (trx) => {
    const kid = await generateKey(trx, d.master, alg as never, name(actor));
    const activatableFrom = new Date(Date.now() + d.keys.leadSeconds * 1000).toISOString();
    return { result: { kid, alg, state: 'staged', activatableFrom }, details: { kid, alg } };
  });
}

/** Activates a staged key. */
export function activate(d: ActDeps, actor: Actor, kid: string) {
  return audited(d.db, actor, 'key.activated', async (trx) => {
    const r = await activateKey(trx, kid, d.keys);
    return { result: { kid, state: 'active', ...r }, details: { kid, ...r } };
  });
}

/** Retires an active key (still verifies for the retention period). */
export function retire(d: ActDeps, actor: Actor, kid: string) {
  return audited(d.db, actor, 'key.retired', async (trx) => {
    const r = await retireKey(trx, kid, d.keys);
    return { result: { kid, state: 'retired', ...r }, details: { kid, ...r } };
  });
}

/** Key compromise: out of the JWKS at once. */
export function revoke(d: ActDeps, actor: Actor, kid: string) {
  return audited(d.db, actor, 'key.revoked', async (trx) => {
    const r = await revokeKey(trx, d.master, kid, name(actor));
    return { result: { kid, state: 'revoked', ...r }, details: { kid, ...r } };
  });
}

/** Stages a key that activates itself after the lead time. */
export function rotate(d: ActDeps, actor: Actor, alg: string) {
  return audited(d.db, actor, 'key.rotated', async (trx) => {
    const r = await rotateKey(trx, d.master, alg as never, d.keys, name(actor));
    return { result: { ...r, activatesAt: r.activatesAt.toISOString() }, details: { alg, ...r } };
  });
}

/** A new cookie-key generation on every node (the previous one still verifies). */
export function rotateCookies(d: ActDeps, actor: Actor) {
  return audited(d.db, actor, 'key.cookies_rotated', async (trx) => {
    const generation = await rotateCookieKeys(trx, d.master);
    return { result: { generation }, details: { generation } };
  });
}

// ---- staff ----

/** Grants a staff role to an account (found by personal ID). */
export function grantStaffRole(d: ActDeps, actor: Actor, g: RoleGrant) {
  return audited(d.db, actor, 'staff.granted', async (trx) => {
    const accountId = await grantRole(trx, g, `${actor.type}:${name(actor)}`);
    return {
      result: {
        account_id: accountId,
        role: g.role,
        provinces: g.provinces?.length ? g.provinces : null,
        agency: g.agency ?? null,
      },
      subject: accountId,
      details: {
        granted: g.role,
        ...(g.provinces?.length ? { provinces: g.provinces } : {}),
        ...(g.agency ? { agency: g.agency } : {}),
      },
    };
  });
}

/** Revokes a staff role. */
export function revokeStaffRole(d: ActDeps, actor: Actor, pin: string, role: string) {
  return audited(d.db, actor, 'staff.revoked', async (trx) => {
    const accountId = await revokeRole(trx, pin, role);
    return { result: { account_id: accountId, role, revoked: true }, subject: accountId, details: { revoked: role } };
  });
}

// ---- audit ----

/** Walks the chain and records the verification (its outcome, in the trail itself). */
export async function verifyAuditChain(d: ActDeps, actor: Actor) {
  const r = await verifyChain(d.db);
  await recordVerification(d.db, r, `${actor.type}:${name(actor)}`);
  return r;
}

// ---- portals: approvals by security ----

/**
 * Security staff widen what a portal may receive at its agency's request (the national_id scope: `changes` with
 * `allowPersonalId`), under the registration rules, with the reason recorded: one audited transaction.
 */
export function approveClientChange(
  d: ActDeps,
  actor: Actor,
  clientId: string,
  changes: ClientChanges,
  reason: string,
) {
  const why = reason.trim();
  if (why.length < 5 || why.length > 500) throw new AppError('invalid_input', 'reason must be 5 to 500 characters');
  return audited(d.db, actor, 'client.change_approved', async (trx) => {
    const { client, changed } = await updateClient(trx, clientId, changes, { production: d.production });
    return { result: client, clientId, reason: why, details: { changed, scope: client.scope } };
  });
}
