/**
 * The OpenID Provider: oidc-provider configured for agency portals. Authorization code flow only, PKCE S256 required
 * for every client, PAR, JAR, JARM and DPoP on, asymmetric signatures only (client secrets are stored hashed, so no
 * HS*), the FAPI 2.0 Security Profile for portals registered with it (fapi.ts), the `acr` echoed in the portal's own
 * vocabulary (assurance.ts), storage in PostgreSQL, our own interaction pages.
 */

import { createHmac, createSecretKey } from 'node:crypto';
import type { Kysely } from 'kysely';
import Provider, { type Configuration, errors, type JWK, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/index.ts';
import { secretMatches } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { cookieSigner } from '../keys/index.ts';
import { latestGrantId, postgresAdapter } from './adapter.ts';
import { assurancePolicy, clientMinLevel, echoedAcr } from './assurance.ts';
import { queueingFetch } from './backchannel.ts';
import { findAccount, loadedAccount, SCOPE_CLAIMS } from './claims.ts';
import {
  assertClientAssertion,
  assertRequestObject,
  FAPI2,
  fapi2Metadata,
  fapiProfile,
  rotateRefreshToken,
} from './fapi.ts';
import { formPostPages, logoutSource, postLogoutSuccessSource, renderError } from './pages.ts';
import { mayInspectToken } from './token-access.ts';
import type { TokenVault } from './token-at-rest.ts';

/** dinhdanh's own account pages sign in through the provider as this first-party client (no consent screen). */
export const ACCOUNT_CLIENT_ID = 'dinhdanh-account';
/** The staff console signs in through the provider as this first-party client. */
export const CONSOLE_CLIENT_ID = 'dinhdanh-console';
/** Staff tools on a staff member's machine (a native client: loopback redirect on any port) get admin API tokens. */
export const STAFF_TOOL_CLIENT_ID = 'dinhdanh-staff-tool';
/** The clients whose tokens for the admin API are a staff member's (rights: the roles held). */
export const STAFF_CLIENTS: ReadonlySet<string> = new Set([CONSOLE_CLIENT_ID, STAFF_TOOL_CLIENT_ID]);
const FIRST_PARTY = new Set([ACCOUNT_CLIENT_ID, CONSOLE_CLIENT_ID, STAFF_TOOL_CLIENT_ID]);

/** The resource indicator of the admin API (access tokens for it carry admin scopes). */
export const adminApiIndicator = (issuer: string) => `${issuer}/admin/api`;

const epoch = () => Math.floor(Date.now() / 1000);
const ASYMMETRIC = ['ES256', 'PS256', 'RS256', 'EdDSA'] as const;
/** What a portal's registered keys sign with (clients/client-keys.ts accepts EC P-256 and RSA keys, no Ed25519). */
const PORTAL_SIGNED = ['ES256', 'PS256', 'RS256'] as const;
/** How a client may authenticate, at the token, PAR, introspection and revocation endpoints alike. */
const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;

/** What the provider needs from the wiring. */
export interface ProviderDeps {
  config: Config;
  db: Kysely<DB>;
  jwks: JWK[];
  cookieKeys: string[];
  /** Secret for pairwise subject identifiers. */
  pairwiseSecret: string;
  /** Keys bearer artefacts at rest (hashed ids, sealed values). */
  tokenVault: TokenVault;
  /** The account's current level (for the step-up check). */
  accountLevel: (accountId: string) => Promise<number>;
  /** Whether the account is a synthetic test citizen (the only ones a sandbox portal may sign in). */
  isTestCitizen: (accountId: string) => Promise<boolean>;
  /** Called when a pre-consented portal receives a grant without a consent page (audit). */
  onImplicitConsent?: (ctx: KoaContextWithOIDC, clientId: string, accountId: string, scope: string) => Promise<void>;
}

/** Builds the provider (not yet mounted). */
export function createProvider(deps: ProviderDeps): Provider {
  const { config, db, jwks, cookieKeys, pairwiseSecret, tokenVault, accountLevel, isTestCitizen, onImplicitConsent } =
    deps;
  // A KeyObject made once (the same key as the UTF-8 string): an HMAC with it costs a fraction of one with a string
  // key, which is imported again at every call (each ID token and userinfo answer of a pairwise portal).
  const pairwiseKey = createSecretKey(Buffer.from(pairwiseSecret, 'utf8'));
  const configuration: Configuration = {
    adapter: postgresAdapter(db, tokenVault),
    findAccount: findAccount(db),
    jwks: { keys: jwks },
    cookies: {
      keys: cookieSigner(cookieKeys),
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      iss: null,
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      ...SCOPE_CLAIMS,
    },
    scopes: ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS)],
    acrValues: Object.keys(config.acr.levels),
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (_ctx, accountId, client) =>
      createHmac('sha256', pairwiseKey).update(`${client.sectorIdentifier}\n${accountId}`).digest('base64url'),
    extraClientMetadata: {
      properties: [
        'dinhdanh_min_level',
        'dinhdanh_consent',
        'dinhdanh_resources',
        'dinhdanh_resource_server',
        'dinhdanh_profile',
        'dinhdanh_phishing_resistant',
        'dinhdanh_agency',
        'dinhdanh_environment',
        'dinhdanh_admin_scopes',
      ],
      validator(_ctx, key, value, metadata) {
        if (key === 'dinhdanh_min_level' && value !== undefined && value !== 1 && value !== 2)
          throw new errors.InvalidClientMetadata('dinhdanh_min_level must be 1 or 2');
        if (key === 'dinhdanh_phishing_resistant' && value !== undefined && typeof value !== 'boolean')
          throw new errors.InvalidClientMetadata('dinhdanh_phishing_resistant must be a boolean');
        if (
          key === 'dinhdanh_resources' &&
          value !== undefined &&
          !(Array.isArray(value) && value.every((v) => typeof v === 'string'))
        )
          throw new errors.InvalidClientMetadata('dinhdanh_resources must be an array of resource indicators');
        if (key === 'dinhdanh_resource_server' && value !== undefined && typeof value !== 'string')
          throw new errors.InvalidClientMetadata('dinhdanh_resource_server must be a resource indicator');
        if (key === 'dinhdanh_consent' && value !== undefined && value !== 'explicit' && value !== 'implicit')
          throw new errors.InvalidClientMetadata('dinhdanh_consent must be explicit or implicit');
        if (key === 'dinhdanh_profile' && value !== undefined && value !== FAPI2)
          throw new errors.InvalidClientMetadata(`dinhdanh_profile must be ${FAPI2}`);
        if (key === 'dinhdanh_profile' && value === FAPI2) fapi2Metadata(metadata);
      },
    },
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      authorization_signed_response_alg: 'ES256',
      subject_type: 'pairwise',
    },
    pkce: { required: () => true },
    clientAuthMethods: CLIENT_AUTH_METHODS,
    // FAPI 2.0 portals: the issuer as the only audience, ES256/PS256 assertions and DPoP proofs.
    assertJwtClientAuthClaimsAndHeader: assertClientAssertion as never,
    enabledJWA: {
      idTokenSigningAlgValues: ASYMMETRIC,
      userinfoSigningAlgValues: ASYMMETRIC,
      introspectionSigningAlgValues: ASYMMETRIC,
      // JARM responses: ES256 (clientDefaults), the only value registration gives a portal today.
      authorizationSigningAlgValues: ['ES256'] as const,
      requestObjectSigningAlgValues: PORTAL_SIGNED,
      clientAuthSigningAlgValues: PORTAL_SIGNED,
      // Ed25519 as both its fully-specified name (RFC 9864; what openid-client 6 sends) and the older EdDSA.
      dPoPSigningAlgValues: ['ES256', 'Ed25519', 'EdDSA', 'PS256'] as const,
    },
    features: {
      devInteractions: { enabled: false },
      // Required per client (FAPI 2.0 portals), never for all: require_pushed_authorization_requests stays false.
      pushedAuthorizationRequests: { enabled: true },
      dPoP: { enabled: true },
      // Signed request objects (JAR, RFC 9101), by value, at PAR or the authorization endpoint; optional.
      requestObjects: { enabled: true, assertJwtClaimsAndHeader: assertRequestObject as never },
      // Signed authorization responses (JARM): response_mode jwt, query.jwt, fragment.jwt, form_post.jwt.
      jwtResponseModes: { enabled: true },
      fapi: { enabled: true, profile: fapiProfile },
      claimsParameter: { enabled: true },
      // Only the token's own client, or the API it was issued for, learns anything about a token or can revoke it;
      // anyone else gets the answer for an unknown token (active:false; 200 with nothing done).
      revocation: { enabled: true, allowedPolicy: mayInspectToken },
      introspection: { enabled: true, allowedPolicy: mayInspectToken },
      // APIs registered in RESOURCE_SERVERS, for portals registered with them: JWT access tokens with the API as audience.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        async getResourceServerInfo(_ctx, indicator, client) {
          // The admin API: back-end services registered with admin scopes; opaque tokens (a revocation is immediate).
          if (indicator === adminApiIndicator(config.issuer)) {
            // Staff tools sign in through the console's client: their rights are their roles, not the token's scope.
            if (STAFF_CLIENTS.has(client.clientId)) return { scope: 'staff', accessTokenFormat: 'opaque' };
            const scopes = client.metadata().dinhdanh_admin_scopes as string[] | undefined;
            if (!scopes?.length) throw new errors.InvalidTarget('resource not registered for this client');
            return { scope: scopes.join(' '), accessTokenFormat: 'opaque' };
          }
          const rs = config.resourceServers.find((r) => r.indicator === indicator);
          const allowed = client.metadata().dinhdanh_resources as string[] | undefined;
          if (!rs || !allowed?.includes(indicator))
            throw new errors.InvalidTarget('resource not registered for this client');
          return {
            scope: rs.scope,
            accessTokenFormat: rs.format,
            ...(rs.format === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
          };
        },
      },
      // Back-end services of agencies; only clients registered with this grant type may use it.
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: assurancePolicy(config.acr, accountLevel),
    },
    // Existing grants as usual; the first-party account client needs no consent (it only learns `sub`).
    async loadExistingGrant(ctx) {
      const client = ctx.oidc.client!;
      const session = ctx.oidc.session!;
      // The consent a citizen gave a portal is remembered across sessions and devices (until revoked).
      const grantId =
        ctx.oidc.result?.consent?.grantId ||
        session.grantIdFor(client.clientId) ||
        (session.accountId ? await latestGrantId(db, session.accountId, client.clientId) : undefined);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      // A sign-in renews the remembered consent: the grant lives CONSENT_TTL_DAYS from the last sign-in, and the
      // codes and refresh tokens that depend on it never outlive it (at most one write a minute per grant).
      if (existing?.exp && existing.exp - epoch() < config.ttl.consent - 60) {
        existing.exp = undefined as unknown as number;
        await existing.save();
      }
      // A sandbox portal never learns anything about a real resident (only test citizens may sign in to it), and a
      // production portal never sees a test citizen.
      const first = FIRST_PARTY.has(client.clientId);
      const sandbox = client.metadata().dinhdanh_environment === 'sandbox';
      // (The account loaded for this request says it, when it is the session's: no statement of its own.)
      const testCitizen = async (id: string) => loadedAccount(ctx, id)?.testCitizen ?? (await isTestCitizen(id));
      if (!first && session.accountId && sandbox !== (await testCitizen(session.accountId)))
        throw new errors.AccessDenied(
          sandbox
            ? 'this portal is in the sandbox: only test citizens may sign in to it'
            : 'test citizens may only sign in to sandbox portals',
        );
      if (!first && client.metadata().dinhdanh_consent !== 'implicit') return existing;
      // Our own account pages and portals pre-consented by law: grant what was asked, and record it.
      const grant =
        existing ?? new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      const scope = first ? 'openid' : String(ctx.oidc.params?.scope ?? 'openid');
      const before = grant.getOIDCScope();
      grant.addOIDCScope(scope);
      // A staff client asking for the admin API: a staff member's token (its rights are the staff roles).
      const admin = adminApiIndicator(config.issuer);
      const forAdmin = STAFF_CLIENTS.has(client.clientId) && ctx.oidc.params?.resource === admin;
      const hadAdmin = !!grant.getResourceScope(admin);
      if (forAdmin && !hadAdmin) grant.addResourceScope(admin, 'staff');
      if (!existing || grant.getOIDCScope() !== before || (forAdmin && !hadAdmin)) {
        await grant.save();
        if (!first) await onImplicitConsent?.(ctx, client.clientId, session.accountId!, scope);
      }
      return grant;
    },
    renderError,
    fetch: queueingFetch(db, config.backchannelRetrySeconds) as never,
    rotateRefreshToken,
    // Client authentication is the same at every endpoint (the client's token_endpoint_auth_method): say so for
    // introspection and revocation (RFC 8414), which oidc-provider does not advertise by itself.
    discovery: {
      require_pushed_authorization_requests: false,
      introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
      introspection_endpoint_auth_signing_alg_values_supported: PORTAL_SIGNED,
      revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
      revocation_endpoint_auth_signing_alg_values_supported: PORTAL_SIGNED,
    },
    ttl: {
      AccessToken: config.ttl.accessToken,
      // At most 60 s for every portal, as FAPI 2.0 requires of its own.
      AuthorizationCode: 60,
      IdToken: config.ttl.idToken,
      // Never longer than the grant it belongs to has left: a refresh token is never orphaned by its grant.
      RefreshToken: (ctx, token) => {
        const grant = ctx?.oidc?.entities?.Grant as { exp?: number; jti?: string } | undefined;
        const left = grant?.exp && grant.jti === token.grantId ? grant.exp - epoch() : Number.POSITIVE_INFINITY;
        return Math.max(1, Math.min(config.ttl.refreshToken, left));
      },
      // Idle timeout, never beyond the absolute lifetime counted from login.
      Session: (_ctx, session) => {
        const loginTs = (session as { loginTs?: number }).loginTs ?? Math.floor(Date.now() / 1000);
        const left = loginTs + config.ttl.session - Math.floor(Date.now() / 1000);
        return Math.max(1, Math.min(config.ttl.sessionIdle, left));
      },
      Grant: config.ttl.consent,
      Interaction: 3600,
      ClientCredentials: config.ttl.accessToken,
    },
  };
  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  // oidc-provider's self-submitting pages (form_post, logout with nobody signed in) without their inline script.
  provider.use(formPostPages);
  // The `acr` in codes (and so in ID tokens and refresh tokens): the value the portal asked for, in its vocabulary.
  Object.defineProperty(provider.OIDCContext.prototype, 'acr', {
    configurable: true,
    get(this: { params?: Record<string, unknown>; session?: { acr?: string }; client?: never }) {
      return echoedAcr(config.acr, this.params ?? {}, this.session?.acr, clientMinLevel(this.client));
    },
  });
  // Client secrets are stored as SHA-256 (the metadata's client_secret holds that hash): compare hashes in constant time.
  provider.Client.prototype.compareClientSecret = function compareClientSecret(
    this: { clientSecret: string },
    actual: string,
  ) {
    return secretMatches(actual, this.clientSecret);
  };
  return provider;
}
