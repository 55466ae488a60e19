/**
 * The OpenID Provider: oidc-provider configured for agency portals. Authorization code flow only, PKCE S256 required
 * for every client, PAR and DPoP on, asymmetric signatures only (client secrets are stored hashed, so no HS*),
 * storage in PostgreSQL, our own interaction pages.
 */
import type { Kysely } from 'kysely';
import Provider, { type Configuration, type JWK } from 'oidc-provider';
import type { Config } from '../config/index.ts';
import { secretMatches } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { postgresAdapter } from './adapter.ts';
import { findAccount, SCOPE_CLAIMS } from './claims.ts';
import { logoutSource, postLogoutSuccessSource, renderError } from './pages.ts';

/** dinhdanh's own account pages sign in through the provider as this first-party client (no consent screen). */
export const ACCOUNT_CLIENT_ID = 'dinhdanh-account';

/** Assurance levels as `acr` values. */
export const ACR = { level1: 'urn:dinhdanh:loa:1', level2: 'urn:dinhdanh:loa:2' } as const;

const ASYMMETRIC = ['ES256', 'PS256', 'RS256', 'EdDSA'] as const;

/** What the provider needs from the wiring. */
export interface ProviderDeps {
  config: Config;
  db: Kysely<DB>;
  jwks: JWK[];
  cookieKeys: string[];
}

/** Builds the provider (not yet mounted). */
export function createProvider({ config, db, jwks, cookieKeys }: ProviderDeps): Provider {
  const configuration: Configuration = {
    adapter: postgresAdapter(db),
    findAccount: findAccount(db),
    jwks: { keys: jwks },
    cookies: {
      keys: cookieKeys,
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
    acrValues: [ACR.level1, ACR.level2],
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    enabledJWA: {
      idTokenSigningAlgValues: ASYMMETRIC,
      userinfoSigningAlgValues: ASYMMETRIC,
      introspectionSigningAlgValues: ASYMMETRIC,
      authorizationSigningAlgValues: ASYMMETRIC,
      requestObjectSigningAlgValues: ASYMMETRIC,
      clientAuthSigningAlgValues: ASYMMETRIC,
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'PS256'] as const,
    },
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: { enabled: true },
      dPoP: { enabled: true },
      claimsParameter: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Existing grants as usual; the first-party account client needs no consent (it only learns `sub`).
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (ctx.oidc.client!.clientId !== ACCOUNT_CLIENT_ID) return undefined;
      const grant = new ctx.oidc.provider.Grant({
        clientId: ACCOUNT_CLIENT_ID,
        accountId: ctx.oidc.session!.accountId,
      });
      grant.addOIDCScope('openid');
      await grant.save();
      return grant;
    },
    renderError,
    rotateRefreshToken: true,
    ttl: {
      AccessToken: config.ttl.accessToken,
      AuthorizationCode: 60,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Session: config.ttl.session,
      Grant: config.ttl.refreshToken,
      Interaction: 3600,
      ClientCredentials: config.ttl.accessToken,
    },
  };
  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  // Client secrets are stored as SHA-256 (the metadata's client_secret holds that hash): compare hashes in constant time.
  provider.Client.prototype.compareClientSecret = function compareClientSecret(
    this: { clientSecret: string },
    actual: string,
  ) {
    return secretMatches(actual, this.clientSecret);
  };
  return provider;
}
