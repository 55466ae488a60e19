/**
 * Relying portals: registration and changes by security staff, lookup for the provider. A portal's secret is shown
 * once, when issued, and stored only as SHA-256; the provider compares presented secrets against that hash (during a
 * rotation's grace period, against the previous one's too). A portal may instead register its public keys
 * (private_key_jwt, client-keys.ts). Every change is announced on CLIENT_CHANGES_CHANNEL when it commits.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { hashSecret, newSecret } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { ADMIN_SCOPES } from '../staff/staff.service.ts';
import { checkJwks, checkJwksUri } from './client-keys.ts';
import {
  insertClient,
  notifyClientChanged,
  type StoredClient,
  selectClient,
  selectClientForUpdate,
  selectClients,
  updateClientRow,
  upsertClient,
} from './clients.repository.ts';

/** What security staff give to register a portal. */
export interface NewClient {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  backchannelLogoutUri?: string;
  /**
   * `none` registers a public client (PKCE only, no secret); `private_key_jwt` a portal that signs assertions with
   * its own keys (`jwks` or `jwksUri`, no secret).
   */
  tokenEndpointAuthMethod?: AuthMethod;
  clientId?: string;
  /** Scopes the portal may receive (default: openid profile address email phone offline_access). */
  scopes?: string[];
  /** Adds the national_id scope (the 12-digit personal ID): only portals entitled by law. */
  allowPersonalId?: boolean;
  /** Lowest level of assurance the portal accepts (default 1). */
  minLevel?: 1 | 2;
  /**
   * Only a phishing-resistant sign-in (a level-2 passkey; PHISHING_RESISTANT_ACR) is accepted: a password + TOTP
   * session steps up with a passkey, a citizen without one gets a clear page and the portal
   * unmet_authentication_requirements. Default false.
   */
  phishingResistant?: boolean;
  /** `pairwise` (default): a different, stable `sub` per sector; `public`: the same `sub` everywhere. */
  subjectType?: 'pairwise' | 'public';
  /** `implicit`: pre-consented by law (no consent page, still recorded). Default `explicit`. */
  consent?: 'explicit' | 'implicit';
  /** A back-end service calling other agencies' APIs: `client_credentials` only, no citizen, no redirect URI. */
  clientCredentials?: boolean;
  /** APIs (RESOURCE_SERVERS indicators) this client may get access tokens for. */
  resources?: string[];
  /**
   * The API (a RESOURCE_SERVERS indicator) this client is: it may introspect and revoke access tokens issued for it.
   * Registered like a back-end service (confidential, no redirect URI).
   */
  resourceServer?: string;
  /** ID token signature algorithm (default ES256). */
  idTokenAlg?: 'ES256' | 'PS256' | 'RS256' | 'EdDSA';
  /**
   * `fapi2`: the FAPI 2.0 Security Profile (PAR, PKCE S256, private_key_jwt, DPoP-bound tokens, ES256/PS256, response
   * mode query or jwt), enforced by the provider for this portal alone. Needs private_key_jwt.
   */
  profile?: 'fapi2';
  /** The portal's public signature keys, a JWK Set (checked: see client-keys.ts). */
  jwks?: unknown;
  /** Where the portal publishes its public signature keys (https; http on loopback outside production). */
  jwksUri?: string;
  /** The agency the portal belongs to (its agency admins manage it). */
  agency?: string;
  /**
   * `sandbox`: only test citizens may sign in to it (no real resident's data); moving to `production` needs security
   * staff's approval. Default `production` (security staff registering on the host).
   */
  environment?: 'sandbox' | 'production';
  /** A back-end service calling the admin API: the admin scopes it may get (`admin:clients` ...). */
  adminScopes?: string[];
}

/** How a portal authenticates at the token endpoint. */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** Methods with a client secret (stored as SHA-256). */
const SECRET_METHODS = new Set<string>(['client_secret_basic', 'client_secret_post']);

/** Scopes a portal may be registered for. */
export const KNOWN_SCOPES = ['openid', 'offline_access', 'profile', 'address', 'email', 'phone', 'national_id'];
const DEFAULT_SCOPES = ['openid', 'offline_access', 'profile', 'address', 'email', 'phone'];

/** A registered portal as printed by the CLI. The secret is present only right after registration. */
export interface ClientView {
  client_id: string;
  client_name: string;
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri?: string;
  token_endpoint_auth_method: string;
  scope: string;
  subject_type: string;
  min_level: number;
  /** Present (true) when the portal requires the phishing-resistant level. */
  phishing_resistant?: boolean;
  consent: string;
  /** `fapi2` for a FAPI 2.0 portal. */
  profile?: string;
  /** Where the portal publishes its keys (private_key_jwt). */
  jwks_uri?: string;
  /** The kids of the portal's registered keys (private_key_jwt). */
  jwks_kids?: string[];
  /** During a secret rotation's grace period: when the previous secret stops working. */
  previous_secret_valid_until?: string;
  created_at?: string;
  agency?: string;
  environment: 'sandbox' | 'production';
  /** A disabled portal is unknown to the provider (every request fails as for an unknown client). */
  disabled?: boolean;
  admin_scopes?: string[];
}

/** An agency code: lower-case letters, digits, dots and hyphens. */
const AGENCY = /^[a-z0-9][a-z0-9.-]{1,62}[a-z0-9]$/;

/** dinhdanh's own clients' ids (reserved: registration refuses them, changes are refused). */
const FIRST_PARTY_ID = /^dinhdanh-/i;

/** What a client id may look like (registration enforces it; lookups refuse anything else). */
const CLIENT_ID = /^[A-Za-z0-9._-]{3,64}$/;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function checkUri(what: string, value: string): string {
  if (!URL.canParse(value)) throw new AppError('invalid_input', `${what} is not a URL: ${value}`);
  const u = new URL(value);
  if (u.hash) throw new AppError('invalid_input', `${what} must not have a fragment: ${value}`);
  if (u.protocol === 'https:') return value;
  if (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) return value;
  throw new AppError('invalid_input', `${what} must be https (http only on localhost): ${value}`);
}

/** A registration profile is known and its portal can meet it (the provider enforces the rest at every request). */
function checkProfile(input: NewClient): void {
  if (input.profile === undefined) return;
  if (input.profile !== 'fapi2') throw new AppError('invalid_input', 'profile must be fapi2');
  if (input.tokenEndpointAuthMethod !== 'private_key_jwt')
    throw new AppError('invalid_input', 'a FAPI 2.0 portal authenticates with private_key_jwt and its public keys');
  if (input.idTokenAlg !== undefined && input.idTokenAlg !== 'ES256' && input.idTokenAlg !== 'PS256')
    throw new AppError('invalid_input', 'a FAPI 2.0 portal gets ID tokens signed with ES256 or PS256');
}

/** What `clients add` and `clients update` check beyond the input itself. */
export interface RegistrationRules {
  /** Production rules: a jwks_uri must be https and not this machine. Default true (the stricter). */
  production?: boolean;
}

/** Registers a portal; returns it with its secret (once). */
export async function addClient(db: Kysely<DB>, input: NewClient, rules: RegistrationRules = {}): Promise<ClientView> {
  const clientId = input.clientId ?? `portal-${randomBytes(9).toString('base64url')}`;
  if (!CLIENT_ID.test(clientId))
    throw new AppError('invalid_input', 'client id must be 3 to 64 letters, digits, ".", "_" or "-"');
  if (FIRST_PARTY_ID.test(clientId))
    throw new AppError('invalid_input', 'client ids starting with dinhdanh- are reserved');
  const { name, metadata } = await metadataOf(input, rules);
  const secret = usesSecret(metadata) ? newSecret() : undefined;
  if (await selectClient(db, clientId)) throw new AppError('conflict', `client ${clientId} already exists`);
  await insertClient(db, { clientId, name, metadata, secretSha256: secret ? hashSecret(secret) : null });
  return { ...view({ clientId, name, metadata }), ...(secret ? { client_secret: secret } : {}) };
}

/**
 * Checks a portal's settings (the same rules for registration and every later change) and returns the client metadata
 * oidc-provider reads.
 */
async function metadataOf(
  input: NewClient,
  rules: RegistrationRules,
): Promise<{ name: string; metadata: Record<string, unknown> }> {
  const name = input.name?.trim();
  if (!name || name.length > 200) throw new AppError('invalid_input', 'name must be 1 to 200 characters');
  const service = !!input.clientCredentials || !!input.resourceServer;
  if (!service && !input.redirectUris.length)
    throw new AppError('invalid_input', 'at least one redirect URI is required');
  const method = input.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (!AUTH_METHODS.includes(method))
    throw new AppError('invalid_input', `unknown auth method ${method} (known: ${AUTH_METHODS.join(' ')})`);
  if (service && method === 'none')
    throw new AppError(
      'invalid_input',
      'a back-end service (client_credentials) must authenticate: not --auth-method none',
    );
  checkProfile(input);
  if (input.jwks !== undefined && input.jwksUri !== undefined)
    throw new AppError('invalid_input', 'give the keys either as a JWK Set (--jwks) or by URL (--jwks-uri), not both');
  if (method === 'private_key_jwt' && input.jwks === undefined && input.jwksUri === undefined)
    throw new AppError(
      'invalid_input',
      "private_key_jwt needs the portal's public keys: --jwks FILE or --jwks-uri URL",
    );
  const jwks = input.jwks === undefined ? undefined : await checkJwks(input.jwks);
  const jwksUri = input.jwksUri === undefined ? undefined : checkJwksUri(input.jwksUri, rules.production ?? true);
  const redirectUris = input.redirectUris.map((u) => checkUri('redirect URI', u));
  const postLogout = (input.postLogoutRedirectUris ?? []).map((u) => checkUri('post-logout redirect URI', u));
  const backchannel = input.backchannelLogoutUri && checkUri('back-channel logout URI', input.backchannelLogoutUri);
  // In production a back-channel URI on this machine would make the node POST to its own services.
  if (backchannel && rules.production === true && LOOPBACK.has(new URL(backchannel).hostname))
    throw new AppError('invalid_input', 'a back-channel logout URI on this machine is refused in production');
  const scopes = new Set(input.scopes?.length ? ['openid', ...input.scopes] : DEFAULT_SCOPES);
  if (scopes.has('national_id') && !input.allowPersonalId)
    throw new AppError(
      'invalid_input',
      'the national_id scope needs --allow-personal-id (portals entitled by law only)',
    );
  if (input.allowPersonalId) scopes.add('national_id');
  const unknown = [...scopes].filter((x) => !KNOWN_SCOPES.includes(x));
  if (unknown.length)
    throw new AppError('invalid_input', `unknown scope: ${unknown.join(', ')} (known: ${KNOWN_SCOPES.join(' ')})`);
  if (input.minLevel !== undefined && input.minLevel !== 1 && input.minLevel !== 2)
    throw new AppError('invalid_input', 'min level must be 1 or 2');
  if (input.environment !== undefined && input.environment !== 'sandbox' && input.environment !== 'production')
    throw new AppError('invalid_input', 'environment must be sandbox or production');
  if (input.agency !== undefined && !AGENCY.test(input.agency))
    throw new AppError('invalid_input', 'agency must be 3 to 64 lower-case letters, digits, "." or "-"');
  const adminScopes = [...new Set(input.adminScopes ?? [])];
  if (adminScopes.some((x) => !(ADMIN_SCOPES as readonly string[]).includes(x)))
    throw new AppError('invalid_input', `admin scopes are ${ADMIN_SCOPES.join(' ')}`);
  if (adminScopes.length && !input.clientCredentials)
    throw new AppError('invalid_input', 'admin scopes are for back-end services (client_credentials) only');
  const metadata: Record<string, unknown> = {
    client_name: name,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogout,
    token_endpoint_auth_method: method,
    grant_types: service ? ['client_credentials'] : ['authorization_code', 'refresh_token'],
    response_types: service ? [] : ['code'],
    scope: [...scopes].join(' '),
    subject_type: service ? 'public' : (input.subjectType ?? 'pairwise'),
    dinhdanh_min_level: input.minLevel ?? 1,
    ...(input.phishingResistant ? { dinhdanh_phishing_resistant: true } : {}),
    dinhdanh_consent: input.consent ?? 'explicit',
    id_token_signed_response_alg: input.idTokenAlg ?? 'ES256',
    ...(jwks ? { jwks } : {}),
    ...(jwksUri ? { jwks_uri: jwksUri } : {}),
    ...(input.resources?.length ? { dinhdanh_resources: input.resources.map((u) => checkUri('resource', u)) } : {}),
    ...(input.resourceServer ? { dinhdanh_resource_server: checkUri('resource server', input.resourceServer) } : {}),
    ...(backchannel ? { backchannel_logout_uri: backchannel, backchannel_logout_session_required: true } : {}),
    ...(input.profile ? { dinhdanh_profile: input.profile } : {}),
    ...(input.agency ? { dinhdanh_agency: input.agency } : {}),
    ...(input.environment === 'sandbox' ? { dinhdanh_environment: 'sandbox' } : {}),
    ...(adminScopes.length ? { dinhdanh_admin_scopes: adminScopes } : {}),
  };
  return { name, metadata };
}

/** Whether the portal authenticates with a secret. */
const usesSecret = (metadata: Record<string, unknown>) =>
  SECRET_METHODS.has(metadata.token_endpoint_auth_method as string);

/** The settings a stored portal was registered with (the inverse of `metadataOf`). */
function settingsOf(c: StoredClient): NewClient {
  const m = c.metadata;
  const scopes = String(m.scope ?? DEFAULT_SCOPES.join(' '))
    .split(' ')
    .filter(Boolean);
  const resourceServer = m.dinhdanh_resource_server as string | undefined;
  return {
    name: c.name,
    redirectUris: (m.redirect_uris as string[] | undefined) ?? [],
    postLogoutRedirectUris: (m.post_logout_redirect_uris as string[] | undefined) ?? [],
    backchannelLogoutUri: m.backchannel_logout_uri as string | undefined,
    tokenEndpointAuthMethod: m.token_endpoint_auth_method as AuthMethod,
    scopes: scopes.filter((x) => x !== 'national_id'),
    allowPersonalId: scopes.includes('national_id'),
    minLevel: (m.dinhdanh_min_level as 1 | 2 | undefined) ?? 1,
    phishingResistant: m.dinhdanh_phishing_resistant === true,
    subjectType: m.subject_type as NewClient['subjectType'],
    consent: m.dinhdanh_consent as NewClient['consent'],
    clientCredentials:
      ((m.grant_types as string[] | undefined) ?? []).includes('client_credentials') && !resourceServer,
    resources: m.dinhdanh_resources as string[] | undefined,
    resourceServer,
    idTokenAlg: m.id_token_signed_response_alg as NewClient['idTokenAlg'],
    jwks: m.jwks,
    jwksUri: m.jwks_uri as string | undefined,
    profile: m.dinhdanh_profile as NewClient['profile'],
    agency: m.dinhdanh_agency as string | undefined,
    environment: m.dinhdanh_environment === 'sandbox' ? 'sandbox' : 'production',
    adminScopes: m.dinhdanh_admin_scopes as string[] | undefined,
  };
}

/** What `clients update` may change; anything left undefined stays as it is. */
export interface ClientChanges {
  name?: string;
  /** Replaces the list. */
  redirectUris?: string[];
  /** Replaces the list. */
  postLogoutRedirectUris?: string[];
  /** A new back-channel logout URI, or null to remove it. */
  backchannelLogoutUri?: string | null;
  /** A new JWK Set of public keys (replaces the registered keys or jwks_uri). */
  jwks?: unknown;
  /** A new jwks_uri (replaces the registered keys or jwks_uri). */
  jwksUri?: string;
  /** Replaces the scopes (`openid` always included; national_id only with `allowPersonalId`). */
  scopes?: string[];
  /** Adds the national_id scope (with `scopes`: the new list may include it). */
  allowPersonalId?: boolean;
  minLevel?: 1 | 2;
  /** Requires (true) or no longer requires (false) the phishing-resistant level. */
  phishingResistant?: boolean;
  tokenEndpointAuthMethod?: AuthMethod;
}

/** The outcome of an update: the portal, a secret when the change gave it one (shown once), what changed. */
export interface UpdatedClient {
  client: ClientView;
  /** The registered properties that changed (metadata names), for the audit trail. */
  changed: string[];
}

/**
 * Changes a registered portal under the same rules as registration; every node sees the change at once (the caller's
 * transaction announces it on commit). A move to a secret method issues a secret (returned once); a move away from
 * one drops the stored secrets. Nothing to change is refused.
 */
export async function updateClient(
  db: Kysely<DB>,
  clientId: string,
  changes: ClientChanges,
  rules: RegistrationRules = {},
): Promise<UpdatedClient> {
  const stored = await storedForChange(db, clientId);
  const before = settingsOf(stored);
  const keys = changes.jwks !== undefined || changes.jwksUri !== undefined;
  const input: NewClient = {
    ...before,
    ...defined({
      name: changes.name,
      redirectUris: changes.redirectUris,
      postLogoutRedirectUris: changes.postLogoutRedirectUris,
      minLevel: changes.minLevel,
      phishingResistant: changes.phishingResistant,
      tokenEndpointAuthMethod: changes.tokenEndpointAuthMethod,
    }),
    ...(changes.backchannelLogoutUri !== undefined
      ? { backchannelLogoutUri: changes.backchannelLogoutUri ?? undefined }
      : {}),
    ...(keys ? { jwks: changes.jwks, jwksUri: changes.jwksUri } : {}),
    ...(changes.scopes !== undefined
      ? { scopes: changes.scopes, allowPersonalId: !!changes.allowPersonalId }
      : { allowPersonalId: before.allowPersonalId || !!changes.allowPersonalId }),
  };
  const { name, metadata } = await metadataOf(input, rules);
  const changed = Object.keys({ ...stored.metadata, ...metadata }).filter(
    (k) => JSON.stringify(stored.metadata[k]) !== JSON.stringify(metadata[k]),
  );
  if (!changed.length) throw new AppError('invalid_input', `client ${clientId}: nothing to change`);
  const hadSecret = usesSecret(stored.metadata) && !!stored.secretSha256;
  const secret = usesSecret(metadata) && !hadSecret ? newSecret() : undefined;
  const keep = usesSecret(metadata) && hadSecret;
  await updateClientRow(db, {
    clientId,
    name,
    metadata,
    secretSha256: secret ? hashSecret(secret) : keep ? stored.secretSha256 : null,
    previousSecretSha256: keep ? stored.previousSecretSha256 : null,
    previousSecretExpiresAt: keep ? stored.previousSecretExpiresAt : null,
  });
  await notifyClientChanged(db, clientId);
  return { client: { ...view({ clientId, name, metadata }), ...(secret ? { client_secret: secret } : {}) }, changed };
}

/** The longest a previous secret may keep working after a rotation: 30 days. */
export const MAX_GRACE_SECONDS = 30 * 86400;

/** A new secret for a portal, shown once; the previous one keeps working until `previous_secret_valid_until`. */
export interface RotatedSecret {
  client_id: string;
  client_secret: string;
  /** When the previous secret stops working; null: it already has. */
  previous_secret_valid_until: string | null;
}

/**
 * Gives a portal a new secret; its current one keeps working for `graceSeconds` (0: stops at once), so the portal can
 * deploy the new one without an outage. A secret still in an earlier rotation's grace period stops working now.
 */
export async function rotateClientSecret(
  db: Kysely<DB>,
  clientId: string,
  graceSeconds: number,
): Promise<RotatedSecret> {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS)
    throw new AppError('invalid_input', `grace must be a whole number of seconds from 0 to ${MAX_GRACE_SECONDS}`);
  const stored = await storedForChange(db, clientId);
  if (!usesSecret(stored.metadata) || !stored.secretSha256)
    throw new AppError(
      'invalid_input',
      `client ${clientId} authenticates with ${String(stored.metadata.token_endpoint_auth_method)}: it has no secret to rotate`,
    );
  const secret = newSecret();
  const until = graceSeconds > 0 ? new Date(Date.now() + graceSeconds * 1000) : null;
  await updateClientRow(db, {
    clientId,
    name: stored.name,
    metadata: stored.metadata,
    secretSha256: hashSecret(secret),
    previousSecretSha256: until ? stored.secretSha256 : null,
    previousSecretExpiresAt: until,
  });
  await notifyClientChanged(db, clientId);
  return { client_id: clientId, client_secret: secret, previous_secret_valid_until: until?.toISOString() ?? null };
}

/**
 * Moves a portal between sandbox and production (security staff's approval; the caller audits it with the reason).
 * Refused when it is already there.
 */
export async function setClientEnvironment(
  db: Kysely<DB>,
  clientId: string,
  environment: 'sandbox' | 'production',
): Promise<ClientView> {
  const stored = await storedForChange(db, clientId);
  const now = stored.metadata.dinhdanh_environment === 'sandbox' ? 'sandbox' : 'production';
  if (now === environment) throw new AppError('conflict', `client ${clientId} is already in ${environment}`);
  const { dinhdanh_environment: _, ...rest } = stored.metadata;
  return rewriteMetadata(db, stored, environment === 'sandbox' ? { ...rest, dinhdanh_environment: 'sandbox' } : rest);
}

/** Disables a portal (every request of it fails as for an unknown client) or enables it again. */
export async function setClientDisabled(db: Kysely<DB>, clientId: string, disabled: boolean): Promise<ClientView> {
  const stored = await storedForChange(db, clientId);
  if (!!stored.metadata.dinhdanh_disabled === disabled)
    throw new AppError('conflict', `client ${clientId} is already ${disabled ? 'disabled' : 'enabled'}`);
  const { dinhdanh_disabled: _, ...rest } = stored.metadata;
  return rewriteMetadata(db, stored, disabled ? { ...rest, dinhdanh_disabled: true } : rest);
}

/** Stores new metadata for a portal, keeping its secrets, and tells every node. */
async function rewriteMetadata(
  db: Kysely<DB>,
  stored: StoredClient,
  metadata: Record<string, unknown>,
): Promise<ClientView> {
  await updateClientRow(db, {
    clientId: stored.clientId,
    name: stored.name,
    metadata,
    secretSha256: stored.secretSha256,
    previousSecretSha256: stored.previousSecretSha256,
    previousSecretExpiresAt: stored.previousSecretExpiresAt,
  });
  await notifyClientChanged(db, stored.clientId);
  return view({ ...stored, metadata });
}

/** One registered portal, without secrets. */
export async function getClient(db: Kysely<DB>, clientId: string): Promise<ClientView> {
  const c = CLIENT_ID.test(clientId) ? await selectClient(db, clientId) : undefined;
  if (!c) throw new AppError('not_found', `no client ${clientId}`);
  return { ...view(c), created_at: c.createdAt.toISOString() };
}

/** A registered client to change, locked for the transaction; unknown ids are refused with one line. */
async function storedForChange(db: Kysely<DB>, clientId: string): Promise<StoredClient> {
  // dinhdanh's own clients (account pages, console, staff tool) are the service's: changing where their codes go
  // would hand staff tokens to whoever changed it.
  if (FIRST_PARTY_ID.test(clientId))
    throw new AppError('forbidden', `${clientId} is one of dinhdanh's own clients: it cannot be changed`);
  const stored = CLIENT_ID.test(clientId) ? await selectClientForUpdate(db, clientId) : undefined;
  if (!stored) throw new AppError('not_found', `no client ${clientId}`);
  return stored;
}

/** The object without its undefined members. */
const defined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Creates or updates a first-party public client (dinhdanh's own pages), e.g. when the issuer URL changes. */
export async function ensureFirstPartyClient(
  db: Kysely<DB>,
  c: {
    clientId: string;
    name: string;
    redirectUris: string[];
    postLogoutRedirectUris: string[];
    /** `native`: a tool on the user's machine (loopback redirect URIs on any port, RFC 8252). */
    applicationType?: 'native';
  },
): Promise<void> {
  const metadata = {
    ...(c.applicationType ? { application_type: c.applicationType } : {}),
    client_name: c.name,
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: c.postLogoutRedirectUris,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
  };
  await upsertClient(db, { clientId: c.clientId, name: c.name, metadata, secretSha256: null });
}

/** Every registered portal, without secrets. */
export async function listClients(db: Kysely<DB>): Promise<ClientView[]> {
  return (await selectClients(db)).map((c) => ({ ...view(c), created_at: c.createdAt.toISOString() }));
}

/**
 * Client metadata for oidc-provider's Client model. `client_secret` carries the stored SHA-256, never the secret;
 * the provider's secret comparison is replaced to hash what the portal presents (see oidc/provider.ts).
 */
export async function findClientMetadata(
  db: Kysely<DB>,
  clientId: string,
): Promise<Record<string, unknown> | undefined> {
  if (!CLIENT_ID.test(clientId)) return undefined; // only ids registration can create (no NUL, no control chars)
  const now = Date.now();
  const hit = cache.get(clientId);
  if (hit && hit.until > now) return hit.metadata;
  const c = await selectClient(db, clientId);
  if (!c || c.metadata.dinhdanh_disabled) return undefined;
  // During a rotation's grace period the previous secret works too: both hashes, space-separated (secretMatches).
  const previousUntil = c.previousSecretExpiresAt?.getTime() ?? 0;
  const hashes = [c.secretSha256, c.previousSecretSha256 && previousUntil > now ? c.previousSecretSha256 : null];
  const secrets = hashes.filter((h): h is string => !!h).join(' ');
  const metadata = { ...c.metadata, client_id: c.clientId, ...(secrets ? { client_secret: secrets } : {}) };
  if (cache.size > 1000) cache.clear();
  // Never cached past the end of a grace period: the previous secret stops working on time.
  cache.set(clientId, {
    metadata,
    until: previousUntil > now ? Math.min(now + CACHE_MS, previousUntil) : now + CACHE_MS,
  });
  return metadata;
}

/**
 * Registered clients change rarely (security staff, CLI), and every change is announced on CLIENT_CHANGES_CHANNEL:
 * a node that listens forgets its copies at once (forgetCachedClients); one that missed the announcement re-reads a
 * client at most this long after.
 */
const CACHE_MS = 5000;
const cache = new Map<string, { metadata: Record<string, unknown>; until: number }>();

/** Forgets every cached client (a client changed, on this node or another). */
export function forgetCachedClients(): void {
  cache.clear();
}

function view(c: Pick<StoredClient, 'clientId' | 'name' | 'metadata'> & Partial<StoredClient>): ClientView {
  const m = c.metadata;
  const kids = (m.jwks as { keys?: { kid?: string }[] } | undefined)?.keys?.map((k) => String(k.kid));
  const graceUntil = c.previousSecretSha256 && c.previousSecretExpiresAt;
  return {
    client_id: c.clientId,
    client_name: c.name,
    redirect_uris: m.redirect_uris as string[],
    post_logout_redirect_uris: (m.post_logout_redirect_uris as string[]) ?? [],
    ...(m.backchannel_logout_uri ? { backchannel_logout_uri: m.backchannel_logout_uri as string } : {}),
    token_endpoint_auth_method: m.token_endpoint_auth_method as string,
    scope: (m.scope as string) ?? DEFAULT_SCOPES.join(' '),
    subject_type: (m.subject_type as string) ?? 'pairwise',
    min_level: (m.dinhdanh_min_level as number) ?? 1,
    ...(m.dinhdanh_phishing_resistant === true ? { phishing_resistant: true } : {}),
    consent: (m.dinhdanh_consent as string) ?? 'explicit',
    ...(m.dinhdanh_profile ? { profile: m.dinhdanh_profile as string } : {}),
    ...(m.jwks_uri ? { jwks_uri: m.jwks_uri as string } : {}),
    ...(kids ? { jwks_kids: kids } : {}),
    ...(graceUntil && graceUntil.getTime() > Date.now()
      ? { previous_secret_valid_until: graceUntil.toISOString() }
      : {}),
    ...(m.dinhdanh_agency ? { agency: m.dinhdanh_agency as string } : {}),
    environment: m.dinhdanh_environment === 'sandbox' ? 'sandbox' : 'production',
    ...(m.dinhdanh_disabled ? { disabled: true } : {}),
    ...(m.dinhdanh_admin_scopes ? { admin_scopes: m.dinhdanh_admin_scopes as string[] } : {}),
  };
}
