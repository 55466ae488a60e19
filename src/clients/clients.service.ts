/**
 * Relying portals: registration by security staff, lookup for the provider. A portal's secret is shown once, at
 * registration, and stored only as SHA-256; the provider compares presented secrets against that hash.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { hashSecret, newSecret } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { insertClient, type StoredClient, selectClient, selectClients, upsertClient } from './clients.repository.ts';

/** What security staff give to register a portal. */
export interface NewClient {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  backchannelLogoutUri?: string;
  /** `none` registers a public client (PKCE only, no secret). */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  clientId?: string;
  /** Scopes the portal may receive (default: openid profile address email phone offline_access). */
  scopes?: string[];
  /** Adds the national_id scope (the 12-digit personal ID): only portals entitled by law. */
  allowPersonalId?: boolean;
  /** Lowest level of assurance the portal accepts (default 1). */
  minLevel?: 1 | 2;
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
}

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
  consent: string;
  created_at?: string;
}

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

/** Registers a portal; returns it with its secret (once). */
export async function addClient(db: Kysely<DB>, input: NewClient): Promise<ClientView> {
  const name = input.name?.trim();
  if (!name || name.length > 200) throw new AppError('invalid_input', 'name must be 1 to 200 characters');
  const service = !!input.clientCredentials || !!input.resourceServer;
  if (!service && !input.redirectUris.length)
    throw new AppError('invalid_input', 'at least one redirect URI is required');
  if (service && input.tokenEndpointAuthMethod === 'none')
    throw new AppError(
      'invalid_input',
      'a back-end service (client_credentials) must authenticate: not --auth-method none',
    );
  const redirectUris = input.redirectUris.map((u) => checkUri('redirect URI', u));
  const postLogout = (input.postLogoutRedirectUris ?? []).map((u) => checkUri('post-logout redirect URI', u));
  const backchannel = input.backchannelLogoutUri && checkUri('back-channel logout URI', input.backchannelLogoutUri);
  const clientId = input.clientId ?? `portal-${randomBytes(9).toString('base64url')}`;
  if (!CLIENT_ID.test(clientId))
    throw new AppError('invalid_input', 'client id must be 3 to 64 letters, digits, ".", "_" or "-"');
  const method = input.tokenEndpointAuthMethod ?? 'client_secret_basic';
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
  const secret = method === 'none' ? undefined : newSecret();
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
    dinhdanh_consent: input.consent ?? 'explicit',
    id_token_signed_response_alg: input.idTokenAlg ?? 'ES256',
    ...(input.resources?.length ? { dinhdanh_resources: input.resources.map((u) => checkUri('resource', u)) } : {}),
    ...(input.resourceServer ? { dinhdanh_resource_server: checkUri('resource server', input.resourceServer) } : {}),
    ...(backchannel ? { backchannel_logout_uri: backchannel, backchannel_logout_session_required: true } : {}),
  };
  if (await selectClient(db, clientId)) throw new AppError('conflict', `client ${clientId} already exists`);
  await insertClient(db, { clientId, name, metadata, secretSha256: secret ? hashSecret(secret) : null });
  return { ...view({ clientId, name, metadata }), ...(secret ? { client_secret: secret } : {}) };
}

/** Creates or updates a first-party public client (dinhdanh's own pages), e.g. when the issuer URL changes. */
export async function ensureFirstPartyClient(
  db: Kysely<DB>,
  c: { clientId: string; name: string; redirectUris: string[]; postLogoutRedirectUris: string[] },
): Promise<void> {
  const metadata = {
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
  const hit = cache.get(clientId);
  if (hit && hit.until > Date.now()) return hit.metadata;
  const c = await selectClient(db, clientId);
  if (!c) return undefined;
  const metadata = {
    ...c.metadata,
    client_id: c.clientId,
    ...(c.secretSha256 ? { client_secret: c.secretSha256 } : {}),
  };
  if (cache.size > 1000) cache.clear();
  cache.set(clientId, { metadata, until: Date.now() + CACHE_MS });
  return metadata;
}

/** Registered clients change rarely (security staff, CLI); each node re-reads one at most this often. */
const CACHE_MS = 5000;
const cache = new Map<string, { metadata: Record<string, unknown>; until: number }>();

function view(c: Pick<StoredClient, 'clientId' | 'name' | 'metadata'>): ClientView {
  const m = c.metadata;
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
    consent: (m.dinhdanh_consent as string) ?? 'explicit',
  };
}
