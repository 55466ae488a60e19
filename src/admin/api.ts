/**
 * The admin REST API (/admin/api/v1): the staff acts (acts.ts) for machine callers and staff tools. Every operation is
 * one entry of OPERATIONS: its zod schemas validate the request and generate the OpenAPI 3.1 document
 * (/admin/api/openapi.json, openapi.ts), so the two cannot drift. Callers present an access token from dinhdanh for
 * the admin API (resource `${issuer}/admin/api`): a back-end service's client_credentials token carrying the admin
 * scopes it was registered for, or a staff member's token from a level-2 sign-in through the staff tool's client
 * (`dinhdanh-staff-tool`: native, code + PKCE, loopback redirect), whose rights are the staff roles the account holds. Errors are RFC 9457 problem+json; lists page by cursor. A caller without the right
 * gets 403 and the attempt is audited (admin.denied).
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { secondFactorState } from '../accounts/index.ts';
import { type Actor, exportEvents, lastVerifiedAt, recordEvent } from '../audit/index.ts';
import { getClient, listClients } from '../clients/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { listKeys, SIGNING_ALGS } from '../keys/index.ts';
import { adminApiIndicator, type ProviderRef, STAFF_CLIENTS } from '../oidc/index.ts';
import { listTestCitizens } from '../seed/sandbox.ts';
import {
  ADMIN_SCOPES,
  agencyOf,
  authorize,
  type Capability,
  isStaffPin,
  listStaff,
  type Principal,
  ROLES,
  staffGrants,
  type Target,
} from '../staff/index.ts';
import * as acts from './acts.ts';
import { searchAudit } from './audit-search.ts';
import { checkChangeWithoutApproval, checkRegistrationWithoutApproval } from './client-rules.ts';
import { denialToAudit } from './denials.ts';
import { portalUsage } from './usage.ts';

/** What the API needs. */
export interface AdminApiDeps {
  host: ProviderRef;
  issuer: string;
  acts: acts.ActDeps;
  /** The personal ID's pseudonym (the login limiter's key, the subject of failed logins). */
  pseudonym: (pin: string) => string;
  /** Lifts the login lock of a key (the login limiter). */
  unlockLogin: (key: string) => Promise<void>;
  /** The level-2 acr value: a staff token's session must have it. */
  level2Acr: string;
  /** acr value -> level (usage per portal counts sign-ins by level). */
  acrLevels: Record<string, number>;
  /** The service's time zone (usage per portal counts by its calendar days). */
  timeZone: string;
  /** Creates the sandbox's test citizens when they do not exist yet (seed/sandbox.ts). */
  ensureTestCitizens: () => Promise<void>;
}

export const API_PREFIX = '/admin/api/v1';

// ---- schemas ----

const PersonalId = z
  .string()
  .regex(/^\d{12}$/, 'must be 12 digits')
  .describe('12-digit personal identification number');
const ClientId = z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, 'must be 3 to 64 letters, digits, ".", "_" or "-"');
const AccountId = z.uuid().describe("the account's internal id (from accounts/search)");
const Kid = z.string().min(1).max(200);
const Cursor = z.string().regex(/^\d{1,18}$/, 'a cursor from next_cursor');
const Limit = z.coerce.number().int().min(1).max(200).default(50);
const Uri = z.string().max(2000);
const Scope = z.enum(['profile', 'address', 'email', 'phone', 'offline_access', 'national_id']);
const Alg = z.enum(SIGNING_ALGS as unknown as [string, ...string[]]).default('ES256');

const Client = z
  .object({
    client_id: z.string(),
    client_name: z.string(),
    client_secret: z.string().optional().describe('present only when just issued'),
    redirect_uris: z.array(z.string()),
    post_logout_redirect_uris: z.array(z.string()),
    backchannel_logout_uri: z.string().optional(),
    token_endpoint_auth_method: z.string(),
    scope: z.string(),
    subject_type: z.string(),
    min_level: z.number(),
    consent: z.string(),
    profile: z.string().optional(),
    jwks_uri: z.string().optional(),
    jwks_kids: z.array(z.string()).optional(),
    previous_secret_valid_until: z.string().optional(),
    created_at: z.string().optional(),
    agency: z.string().optional(),
    environment: z.enum(['sandbox', 'production']),
    disabled: z.boolean().optional(),
    admin_scopes: z.array(z.string()).optional(),
  })
  .meta({ id: 'Client' });

const NewClient = z
  .object({
    client_name: z.string().min(1).max(200),
    redirect_uris: z.array(Uri).max(20).default([]),
    post_logout_redirect_uris: z.array(Uri).max(20).optional(),
    backchannel_logout_uri: Uri.optional(),
    token_endpoint_auth_method: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'])
      .default('client_secret_basic'),
    jwks_uri: Uri.optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
    client_id: ClientId.optional(),
    scopes: z.array(Scope).optional(),
    min_level: z.union([z.literal(1), z.literal(2)]).optional(),
    consent: z.enum(['explicit', 'implicit']).optional().describe('implicit: security staff and machine callers only'),
    client_credentials: z.boolean().optional(),
    admin_scopes: z.array(z.enum(ADMIN_SCOPES)).optional(),
    agency: z.string().optional().describe('agency admins: always their own agency'),
    environment: z
      .enum(['sandbox', 'production'])
      .optional()
      .describe('default sandbox; production (and national_id, implicit consent) only security staff, with a reason'),
    reason: z.string().min(5).max(500).optional().describe('why production, national_id or implicit consent'),
  })
  .strict()
  .meta({ id: 'NewClient' });

const ClientChanges = z
  .object({
    client_name: z.string().min(1).max(200).optional(),
    redirect_uris: z.array(Uri).max(20).optional(),
    post_logout_redirect_uris: z.array(Uri).max(20).optional(),
    backchannel_logout_uri: Uri.nullable().optional(),
    token_endpoint_auth_method: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'])
      .optional(),
    jwks_uri: Uri.optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
    scopes: z.array(Scope).optional(),
    min_level: z.union([z.literal(1), z.literal(2)]).optional(),
    reason: z.string().min(5).max(500).optional().describe('security staff adding national_id: why'),
  })
  .strict()
  .meta({ id: 'ClientChanges' });

const Page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });

const Account = z
  .object({
    accountId: z.string(),
    fullName: z.string().optional(),
    birthDate: z.string().optional(),
    residentStatus: z.string().optional(),
    level: z.number().optional(),
    status: z.string().optional(),
    verifiedInPersonAt: z.unknown().optional(),
    verifiedBy: z.string().nullable().optional(),
    totp: z.boolean().optional(),
    totpPending: z.boolean().optional(),
    recoveryCodesLeft: z.number().optional(),
  })
  .meta({ id: 'Account' });

const Key = z
  .object({ kid: z.string(), alg: z.string(), state: z.string() })
  .catchall(z.unknown())
  .meta({ id: 'SigningKey' });

const AuditEntry = z
  .object({
    seq: z.number(),
    at: z.string(),
    actor_type: z.string(),
    actor_id: z.string().nullable(),
    action: z.string(),
    outcome: z.string(),
    subject: z.string().nullable(),
    client_id: z.string().nullable(),
    ip: z.string().nullable(),
    reason: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEvent' });

const StaffEntry = z
  .object({
    account_id: z.string(),
    personal_id: z.string(),
    full_name: z.string(),
    role: z.enum(ROLES),
    provinces: z.array(z.string()).nullable(),
    agency: z.string().nullable(),
    granted_by: z.string(),
    granted_at: z.string(),
  })
  .meta({ id: 'StaffRole' });

const TestCitizen = z
  .object({
    personal_id: z.string(),
    full_name: z.string(),
    birth_date: z.string(),
    level: z.number(),
    password: z.string(),
    totp_secret: z.string().nullable(),
  })
  .meta({ id: 'TestCitizen' });

const Anything = z.record(z.string(), z.unknown());

// ---- operations ----

/** A validated request. */
interface Input<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

/** One API operation. */
export interface Operation {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI path template under API_PREFIX, e.g. `/clients/{client_id}`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  capability: Capability;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  response: z.ZodType;
  /** Success status (default 200). */
  status?: 200 | 201;
  /** The response is NDJSON (a stream of `response` items). */
  ndjson?: boolean;
  /** What the act is about, for roles scoped to provinces or an agency. */
  target?: (i: Input<any, any, any>, d: AdminApiDeps) => Promise<Target>;
  run: (i: Input<any, any, any>, actor: Actor, d: AdminApiDeps, p: Principal, ctx: Context) => Promise<unknown>;
}

/** Typed construction of an operation from its schemas. */
function op<P extends z.ZodObject, Q extends z.ZodObject, B extends z.ZodType>(
  o: Omit<Operation, 'params' | 'query' | 'body' | 'run' | 'target'> & {
    params?: P;
    query?: Q;
    body?: B;
    target?: (i: Input<z.output<P>, z.output<Q>, z.output<B>>, d: AdminApiDeps) => Promise<Target>;
    run: (
      i: Input<z.output<P>, z.output<Q>, z.output<B>>,
      actor: Actor,
      d: AdminApiDeps,
      p: Principal,
      ctx: Context,
    ) => Promise<unknown>;
  },
): Operation {
  return o as Operation;
}

/** The personal ID of an account (acts find accounts by it; officers are scoped by its province code). */
async function pinOf(db: Kysely<DB>, accountId: string): Promise<string> {
  const r = await db
    .selectFrom('accounts')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select('residents.pin')
    .where('accounts.id', '=', accountId)
    .executeTakeFirst();
  if (!r) throw new AppError('not_found', 'no such account');
  return r.pin;
}

const byAccount = z.object({ account_id: AccountId });
const accountTarget = async (i: Input<{ account_id: string }, unknown, unknown>, d: AdminApiDeps) => {
  const pin = await pinOf(d.acts.db, i.params.account_id);
  return { pin, staff: await isStaffPin(d.acts.db, pin) };
};
const byClient = z.object({ client_id: ClientId });
const clientTarget = async (i: Input<{ client_id: string }, unknown, unknown>, d: AdminApiDeps) => ({
  agency: (await getClient(d.acts.db, i.params.client_id)).agency ?? null,
});
const byKid = z.object({ kid: Kid });

/** Officer acts on an account, by path. */
const accountAct = (
  path: string,
  operationId: string,
  summary: string,
  act: (d: acts.ActDeps, a: Actor, pin: string) => Promise<unknown>,
) =>
  op({
    method: 'post',
    path: `/accounts/{account_id}/${path}`,
    operationId,
    summary,
    tag: 'accounts',
    capability: 'accounts.act',
    params: byAccount,
    response: Anything,
    target: accountTarget,
    run: async (i, actor, d) => act(d.acts, actor, await pinOf(d.acts.db, i.params.account_id)),
  });

/** Security acts on a key, by path. */
const keyAct = (
  path: string,
  operationId: string,
  summary: string,
  act: (d: acts.ActDeps, a: Actor, kid: string) => Promise<unknown>,
) =>
  op({
    method: 'post',
    path: `/keys/{kid}/${path}`,
    operationId,
    summary,
    tag: 'keys',
    capability: 'keys.write',
    params: byKid,
    response: Anything,
    run: (i, actor, d) => act(d.acts, actor, i.params.kid),
  });

export const OPERATIONS: Operation[] = [
  // -- clients --
  op({
    method: 'get',
    path: '/clients',
    operationId: 'listClients',
    summary: 'Registered portals (an agency admin sees its agency only)',
    tag: 'clients',
    capability: 'clients.read',
    query: z.object({ cursor: ClientId.optional(), limit: Limit }),
    response: Page(Client),
    run: async (i, _a, d, p) => {
      const agency = agencyOf(p);
      const all = (await listClients(d.acts.db))
        .filter((c) => !agency || authorize(p, 'clients.read', { agency: c.agency ?? null }))
        .filter((c) => !i.query.cursor || c.client_id > i.query.cursor)
        .sort((a, b) => (a.client_id < b.client_id ? -1 : 1));
      const items = all.slice(0, i.query.limit);
      return { items, next_cursor: all.length > i.query.limit ? items.at(-1)!.client_id : null };
    },
  }),
  op({
    method: 'get',
    path: '/clients/{client_id}',
    operationId: 'getClient',
    summary: 'One portal',
    tag: 'clients',
    capability: 'clients.read',
    params: byClient,
    response: Client,
    target: clientTarget,
    run: (i, _a, d) => getClient(d.acts.db, i.params.client_id),
  }),
  op({
    method: 'post',
    path: '/clients',
    operationId: 'createClient',
    summary: 'Register a portal (agency admins: in the sandbox, for their agency); the secret is shown once',
    tag: 'clients',
    capability: 'clients.write',
    body: NewClient,
    response: Client,
    status: 201,
    run: async (i, actor, d, p) => {
      const b = i.body;
      const agency = agencyOf(p);
      // Only a person holding the admin role hands out admin scopes (they reach staff roles and keys).
      if (b.admin_scopes?.length && !(p.kind === 'staff' && authorize(p, 'staff.write')))
        throw new AppError(
          'forbidden',
          'admin scopes are granted by a person holding the admin role, never by a machine',
        );
      if (actor.role === 'agency_admin' && b.agency && b.agency !== agency)
        throw new AppError('forbidden', 'agency admins register for their agency');
      // Portals start in the sandbox; production, national_id and implicit consent are security staff's decision,
      // with the reason recorded.
      const approver = !!authorize(p, 'clients.approve');
      const environment = b.environment ?? 'sandbox';
      const decided = environment === 'production' || b.scopes?.includes('national_id') || b.consent === 'implicit';
      if (!approver) checkRegistrationWithoutApproval({ ...b, environment });
      else if (decided && !b.reason) throw new AppError('invalid_input', 'body.reason: say why (5 to 500 characters)');
      if (environment === 'sandbox') await d.ensureTestCitizens();
      return acts.registerClient(
        d.acts,
        actor,
        {
          name: b.client_name,
          redirectUris: b.redirect_uris,
          postLogoutRedirectUris: b.post_logout_redirect_uris,
          backchannelLogoutUri: b.backchannel_logout_uri,
          tokenEndpointAuthMethod: b.token_endpoint_auth_method,
          jwksUri: b.jwks_uri,
          jwks: b.jwks,
          clientId: b.client_id,
          scopes: b.scopes,
          allowPersonalId: b.scopes?.includes('national_id'),
          minLevel: b.min_level,
          consent: b.consent,
          clientCredentials: b.client_credentials,
          adminScopes: b.admin_scopes,
          agency: actor.role === 'agency_admin' ? agency : b.agency,
          environment,
        },
        decided ? b.reason : undefined,
      );
    },
  }),
  op({
    method: 'patch',
    path: '/clients/{client_id}',
    operationId: 'updateClient',
    summary: 'Change a portal (same checks as registration)',
    tag: 'clients',
    capability: 'clients.write',
    params: byClient,
    body: ClientChanges,
    response: Client,
    target: clientTarget,
    run: async (i, actor, d, p) => {
      const b = i.body;
      const changes = {
        name: b.client_name,
        redirectUris: b.redirect_uris,
        postLogoutRedirectUris: b.post_logout_redirect_uris,
        backchannelLogoutUri: b.backchannel_logout_uri,
        tokenEndpointAuthMethod: b.token_endpoint_auth_method,
        jwksUri: b.jwks_uri,
        jwks: b.jwks,
        scopes: b.scopes,
        allowPersonalId: b.scopes?.includes('national_id') || undefined,
        minLevel: b.min_level,
      };
      const client = await getClient(d.acts.db, i.params.client_id);
      if (!authorize(p, 'clients.approve')) {
        checkChangeWithoutApproval(client, changes);
        return acts.changeClient(d.acts, actor, i.params.client_id, changes);
      }
      // Security staff widening what a portal receives say why (recorded as an approved change).
      const widens = b.scopes?.includes('national_id') && !client.scope.split(' ').includes('national_id');
      if (!widens) return acts.changeClient(d.acts, actor, i.params.client_id, changes);
      if (!b.reason) throw new AppError('invalid_input', 'body.reason: say why (5 to 500 characters)');
      return acts.approveClientChange(d.acts, actor, i.params.client_id, changes, b.reason);
    },
  }),
  op({
    method: 'post',
    path: '/clients/{client_id}/secret',
    operationId: 'rotateClientSecret',
    summary: 'A new secret, shown once; the current one works for the grace period',
    tag: 'clients',
    capability: 'clients.write',
    params: byClient,
    body: z.object({ grace_seconds: z.number().int().min(0).max(2_592_000).default(86_400) }).strict(),
    response: Anything,
    target: clientTarget,
    run: (i, actor, d) => acts.rotateSecret(d.acts, actor, i.params.client_id, i.body.grace_seconds),
  }),
  op({
    method: 'post',
    path: '/clients/{client_id}/disable',
    operationId: 'disableClient',
    summary: 'Disable a portal: every request of it fails as for an unknown client',
    tag: 'clients',
    capability: 'clients.write',
    params: byClient,
    response: Client,
    target: clientTarget,
    run: (i, actor, d) => acts.disableClient(d.acts, actor, i.params.client_id, true),
  }),
  op({
    method: 'post',
    path: '/clients/{client_id}/enable',
    operationId: 'enableClient',
    summary: 'Enable a disabled portal',
    tag: 'clients',
    capability: 'clients.write',
    params: byClient,
    response: Client,
    target: clientTarget,
    run: (i, actor, d) => acts.disableClient(d.acts, actor, i.params.client_id, false),
  }),
  op({
    method: 'post',
    path: '/clients/{client_id}/approval',
    operationId: 'approveClient',
    summary: 'Security staff: move a portal to production (or back to the sandbox), with the reason',
    tag: 'clients',
    capability: 'clients.approve',
    params: byClient,
    body: z
      .object({
        environment: z.enum(['production', 'sandbox']).default('production'),
        reason: z.string().min(5).max(500),
      })
      .strict(),
    response: Client,
    run: (i, actor, d) => acts.approveClient(d.acts, actor, i.params.client_id, i.body.environment, i.body.reason),
  }),
  op({
    method: 'get',
    path: '/clients/{client_id}/usage',
    operationId: 'clientUsage',
    summary:
      'Usage per day (last 14 days): sign-ins by level, failures, consents, back-channel failures; active grants',
    tag: 'clients',
    capability: 'clients.read',
    params: byClient,
    response: z.object({
      days: z.array(
        z.object({
          day: z.string(),
          logins: z.record(z.string(), z.number()),
          failedLogins: z.number(),
          consents: z.number(),
          backchannelFailures: z.number(),
        }),
      ),
      activeGrants: z.number(),
    }),
    target: clientTarget,
    run: async (i, _a, d) => {
      await getClient(d.acts.db, i.params.client_id); // an unknown portal is a 404, not an empty report
      return portalUsage(d.acts.db, i.params.client_id, d.acrLevels, d.timeZone);
    },
  }),
  op({
    method: 'get',
    path: '/sandbox/test-citizens',
    operationId: 'listTestCitizens',
    summary: "The sandbox's test citizens and their credentials (synthetic; the only ones a sandbox portal signs in)",
    tag: 'clients',
    capability: 'clients.read',
    response: z.object({ items: z.array(TestCitizen) }),
    run: async (_i, _a, d) => {
      await d.ensureTestCitizens();
      return { items: await listTestCitizens(d.acts.db) };
    },
  }),
  // -- accounts --
  op({
    method: 'post',
    path: '/accounts/search',
    operationId: 'findAccount',
    summary: 'Find an account by personal ID (in the body, never in a URL); the look-up is audited',
    tag: 'accounts',
    capability: 'accounts.read',
    body: z.object({ personal_id: PersonalId }).strict(),
    response: Account,
    target: async (i, d) => ({ pin: i.body.personal_id, staff: await isStaffPin(d.acts.db, i.body.personal_id) }),
    run: (i, actor, d) => acts.viewAccount(d.acts, actor, i.body.personal_id),
  }),
  accountAct(
    'in-person-verification',
    'verifyInPerson',
    'After an in-person check: a one-time activation code (15 minutes)',
    acts.verifyInPerson,
  ),
  accountAct(
    'password-reset-code',
    'passwordResetCode',
    'After an in-person check: a one-time password-reset code (60 minutes)',
    acts.passwordResetCode,
  ),
  accountAct('suspend', 'suspendAccount', 'Suspend the account and end its sessions', acts.suspend),
  accountAct('reactivate', 'reactivateAccount', 'Reactivate a suspended account', acts.reactivate),
  accountAct(
    'second-factor-reset',
    'resetSecondFactor',
    'Remove TOTP and recovery codes (back to level 1)',
    acts.resetSecondFactor,
  ),
  op({
    method: 'post',
    path: '/accounts/{account_id}/unlock',
    operationId: 'unlockAccount',
    summary: 'Lift a temporary login lock',
    tag: 'accounts',
    capability: 'accounts.act',
    params: byAccount,
    response: z.object({ unlocked: z.boolean() }),
    target: accountTarget,
    run: async (i, actor, d) => {
      const pin = await pinOf(d.acts.db, i.params.account_id);
      await acts.unlock(d.acts, actor, pin, d.pseudonym(pin), d.unlockLogin);
      return { unlocked: true };
    },
  }),
  // -- keys --
  op({
    method: 'get',
    path: '/keys',
    operationId: 'listKeys',
    summary: 'Signing keys with their states and dates',
    tag: 'keys',
    capability: 'keys.read',
    response: z.object({ items: z.array(Key) }),
    run: async (_i, _a, d) => ({ items: await listKeys(d.acts.db) }),
  }),
  op({
    method: 'post',
    path: '/keys',
    operationId: 'generateKey',
    summary: 'Stage a new signing key (published now, signs once activated)',
    tag: 'keys',
    capability: 'keys.write',
    body: z.object({ alg: Alg }).strict(),
    response: Anything,
    status: 201,
    run: (i, actor, d) => acts.stageKey(d.acts, actor, i.body.alg),
  }),
  keyAct('activate', 'activateKey', 'Activate a staged key', acts.activate),
  keyAct('retire', 'retireKey', 'Retire an active key (a staged key past its lead time takes over)', acts.retire),
  keyAct('revoke', 'revokeKey', 'Key compromise: out of the JWKS at once', acts.revoke),
  op({
    method: 'post',
    path: '/keys/rotation',
    operationId: 'rotateKey',
    summary: 'Stage a key that activates itself after the lead time',
    tag: 'keys',
    capability: 'keys.write',
    body: z.object({ alg: Alg }).strict(),
    response: Anything,
    run: (i, actor, d) => acts.rotate(d.acts, actor, i.body.alg),
  }),
  op({
    method: 'post',
    path: '/cookie-keys/rotation',
    operationId: 'rotateCookieKeys',
    summary: 'A new cookie-key generation on every node',
    tag: 'keys',
    capability: 'keys.write',
    response: Anything,
    run: (_i, actor, d) => acts.rotateCookies(d.acts, actor),
  }),
  // -- audit --
  op({
    method: 'get',
    path: '/audit/events',
    operationId: 'searchAudit',
    summary: 'Audit events, newest first, by subject, actor, action, portal and time',
    tag: 'audit',
    capability: 'audit.read',
    query: z.object({
      subject: z.string().max(200).optional(),
      actor: z.string().max(200).optional().describe('actor id'),
      actor_type: z.enum(['citizen', 'officer', 'staff', 'operator', 'client', 'system']).optional(),
      action: z.string().max(100).optional(),
      client_id: z.string().max(64).optional(),
      since: z.iso.datetime({ offset: true }).optional(),
      until: z.iso.datetime({ offset: true }).optional(),
      cursor: Cursor.optional(),
      limit: Limit,
    }),
    response: Page(AuditEntry),
    run: (i, _a, d) => {
      const q = i.query;
      return searchAudit(d.acts.db, {
        subjects: q.subject ? [q.subject] : undefined,
        actorId: q.actor,
        actorType: q.actor_type,
        action: q.action,
        clientId: q.client_id,
        since: q.since ? new Date(q.since) : undefined,
        until: q.until ? new Date(q.until) : undefined,
        before: q.cursor ? Number(q.cursor) : undefined,
        limit: q.limit,
      });
    },
  }),
  op({
    method: 'get',
    path: '/audit/export',
    operationId: 'exportAudit',
    summary: 'Audit events in chain order as NDJSON (streamed)',
    tag: 'audit',
    capability: 'audit.read',
    query: z.object({
      since: z.iso.datetime({ offset: true }).optional(),
      actor_type: z.enum(['citizen', 'officer', 'staff', 'operator', 'client', 'system']).optional(),
    }),
    response: Anything,
    ndjson: true,
    run: async (i, actor, d, _p, ctx) => {
      await recordEvent(d.acts.db, {
        actor: { type: actor.type, id: actor.id },
        action: 'audit.exported',
        outcome: 'success',
        ip: actor.ip,
        details: { ...i.query, role: actor.role, via: actor.via },
      });
      const { PassThrough } = await import('node:stream');
      const out = new PassThrough();
      ctx.type = 'application/x-ndjson';
      ctx.body = out;
      const filter = { since: i.query.since ? new Date(i.query.since) : undefined, actorType: i.query.actor_type };
      exportEvents(d.acts.db, filter, (line) =>
        out.write(line) ? undefined : new Promise<void>((r) => out.once('drain', () => r())),
      )
        .then(() => out.end())
        .catch((err: unknown) => out.destroy(err as Error));
      return undefined;
    },
  }),
  op({
    method: 'post',
    path: '/audit/verification',
    operationId: 'verifyAudit',
    summary: 'Walk the hash chain now (recorded in the trail)',
    tag: 'audit',
    capability: 'audit.verify',
    response: Anything,
    run: (_i, actor, d) => acts.verifyAuditChain(d.acts, actor),
  }),
  op({
    method: 'get',
    path: '/audit/verification',
    operationId: 'lastAuditVerification',
    summary: 'When the chain was last found intact',
    tag: 'audit',
    capability: 'audit.read',
    response: z.object({ last_verified_at: z.string().nullable() }),
    run: async (_i, _a, d) => ({ last_verified_at: (await lastVerifiedAt(d.acts.db))?.toISOString() ?? null }),
  }),
  // -- registry --
  op({
    method: 'get',
    path: '/registry/imports',
    operationId: 'listRegistryImports',
    summary: 'Registry import runs, newest first, with their counts and rejects by reason',
    tag: 'registry',
    capability: 'registry.read',
    query: z.object({ cursor: Cursor.optional(), limit: Limit }),
    response: Page(AuditEntry),
    run: (i, _a, d) =>
      searchAudit(d.acts.db, {
        action: 'registry.imported',
        before: i.query.cursor ? Number(i.query.cursor) : undefined,
        limit: i.query.limit,
      }),
  }),
  // -- staff --
  op({
    method: 'get',
    path: '/staff',
    operationId: 'listStaff',
    summary: 'Staff and their roles',
    tag: 'staff',
    capability: 'staff.read',
    response: z.object({ items: z.array(StaffEntry) }),
    run: async (_i, _a, d) => ({ items: await listStaff(d.acts.db) }),
  }),
  op({
    method: 'post',
    path: '/staff',
    operationId: 'grantStaffRole',
    summary: 'Grant a role to an account (officers: optionally scoped to provinces; agency admins: an agency)',
    tag: 'staff',
    capability: 'staff.write',
    body: z
      .object({
        personal_id: PersonalId,
        role: z.enum(ROLES),
        provinces: z
          .array(z.string().regex(/^\d{3}$/))
          .max(63)
          .optional(),
        agency: z.string().max(64).optional(),
      })
      .strict(),
    response: Anything,
    status: 201,
    run: (i, actor, d) =>
      acts.grantStaffRole(d.acts, actor, {
        pin: i.body.personal_id,
        role: i.body.role,
        provinces: i.body.provinces,
        agency: i.body.agency,
      }),
  }),
  op({
    method: 'delete',
    path: '/staff/{account_id}/roles/{role}',
    operationId: 'revokeStaffRole',
    summary: 'Revoke a role (never the last admin)',
    tag: 'staff',
    capability: 'staff.write',
    params: z.object({ account_id: AccountId, role: z.enum(ROLES) }),
    response: Anything,
    run: async (i, actor, d) =>
      acts.revokeStaffRole(d.acts, actor, await pinOf(d.acts.db, i.params.account_id), i.params.role),
  }),
];

// ---- HTTP ----

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  413: 'Payload too large',
  415: 'Unsupported media type',
  429: 'Too many requests',
};

/** An RFC 9457 problem document. */
function problem(ctx: Context, status: number, detail: string, extra: Record<string, unknown> = {}) {
  ctx.status = status;
  ctx.set('cache-control', 'no-store');
  ctx.type = 'application/problem+json';
  ctx.body = { type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail, ...extra };
}

/** The bearer token's principal, or a 401 reason. */
async function principalOf(ctx: Context, d: AdminApiDeps): Promise<Principal | string> {
  const m = /^Bearer ([A-Za-z0-9._~+/-]{20,512}=*)$/.exec(ctx.get('authorization'));
  if (!m) return 'a bearer access token for the admin API is required';
  const provider = d.host.current;
  type Token = {
    clientId: string;
    scope?: string;
    aud?: string | string[];
    jkt?: string;
    accountId?: string;
    sessionUid?: string;
  };
  const machine = (await provider.ClientCredentials.find(m[1]!)) as Token | undefined;
  const token = machine ?? ((await provider.AccessToken.find(m[1]!)) as Token | undefined);
  if (!token) return 'the access token is not valid';
  const audience = Array.isArray(token.aud) ? token.aud : token.aud ? [token.aud] : [];
  if (!audience.includes(adminApiIndicator(d.issuer))) return 'the access token is not for the admin API';
  if (token.jkt) return 'DPoP-bound tokens are not accepted here; request a bearer token';
  if (machine) {
    // A client disabled (or removed) since the token was issued is refused at once.
    if (!(await provider.Client.find(token.clientId))) return 'the client is not registered';
    return { kind: 'client', clientId: token.clientId, scopes: String(token.scope ?? '').split(' '), ip: ctx.ip };
  }
  // A staff member's token (the console's or a staff tool's client): valid while the level-2 session it came from lasts, and while
  // the account is active at level 2; the rights are the roles held now.
  if (!STAFF_CLIENTS.has(token.clientId) || !token.accountId) return 'the access token is not for the admin API';
  const session = token.sessionUid ? await provider.Session.findByUid(token.sessionUid) : undefined;
  if (session?.accountId !== token.accountId) return 'the staff session has ended; sign in again';
  if (session.acr !== d.level2Acr) return 'a level-2 sign-in is needed';
  const state = await secondFactorState(d.acts.db, token.accountId);
  if (state?.status !== 'active' || state.level < 2) return 'the account is not active at level 2';
  return {
    kind: 'staff',
    accountId: token.accountId,
    grants: await staffGrants(d.acts.db, token.accountId),
    ip: ctx.ip,
    via: 'api',
  };
}

/** The first zod issue, as one line. */
function issueLine(err: z.ZodError, where: string): string {
  const i = err.issues[0]!;
  return `${where}${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`;
}

/** The API's router. */
export function adminApiRoutes(d: AdminApiDeps): Router {
  const router = new Router({ prefix: API_PREFIX });
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '64kb', encoding: 'utf-8' });

  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof AppError && err.expose) {
        if (err.retryAfter) ctx.set('retry-after', String(err.retryAfter));
        return problem(ctx, err.status, err.message);
      }
      const e = err as { status?: number; type?: string; name?: string };
      if (e.type === 'entity.too.large' || e.status === 413) return problem(ctx, 413, 'the body is larger than 64 KiB');
      if (e.name === 'SyntaxError' && e.status === 400) return problem(ctx, 400, 'the body is not valid JSON');
      if (e.status && e.status >= 400 && e.status < 500) return problem(ctx, e.status, 'the request cannot be read');
      throw err;
    }
  });

  for (const o of OPERATIONS) {
    const path = o.path.replace(/\{(\w+)\}/g, ':$1');
    router[o.method](o.operationId, path, json, async (ctx) => {
      ctx.set('cache-control', 'no-store');
      const who = await principalOf(ctx, d);
      if (typeof who === 'string') {
        ctx.set('www-authenticate', `Bearer realm="dinhdanh-admin", error="invalid_token"`);
        return problem(ctx, 401, who);
      }
      if (o.body && !ctx.is('application/json') && ctx.request.length)
        return problem(ctx, 415, 'send the body as application/json');
      const parse = (schema: z.ZodType | undefined, value: unknown, where: string) => {
        if (!schema) return {};
        const r = schema.safeParse(value);
        if (!r.success) throw new AppError('invalid_input', issueLine(r.error, where));
        return r.data;
      };
      const input = {
        params: parse(o.params, ctx.params, 'path'),
        query: parse(o.query, ctx.query, 'query'),
        body: parse(o.body, ctx.request.body ?? {}, 'body'),
      };
      // Whether the caller may do this at all comes before looking anything up (no existence oracle for outsiders);
      // then whether it may do it to this target.
      const target = authorize(who, o.capability) && o.target ? await o.target(input, d) : {};
      const actor = authorize(who, o.capability, target);
      if (!actor) {
        const caller =
          who.kind === 'client'
            ? { type: 'client' as const, id: who.clientId }
            : { type: 'staff' as const, id: who.accountId };
        const audit = denialToAudit(`${caller.type}:${caller.id}:${o.capability}`);
        if (audit.audit)
          await recordEvent(d.acts.db, {
            actor: caller,
            action: 'admin.denied',
            outcome: 'failure',
            reason: 'forbidden',
            ip: ctx.ip,
            details: {
              capability: o.capability,
              operation: o.operationId,
              via: 'api',
              ...(audit.suppressed ? { suppressed: audit.suppressed } : {}),
            },
          });
        return problem(ctx, 403, `this operation needs ${o.capability}`);
      }
      const result = await o.run(input, actor, d, who, ctx);
      if (o.ndjson) return;
      ctx.status = o.status ?? 200;
      ctx.body = result;
    });
  }
  return router;
}
