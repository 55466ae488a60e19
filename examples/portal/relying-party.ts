/**
 * The portal as an OpenID Connect relying party, with openid-client: discovery, authorization code + PKCE S256 with
 * state and nonce, ID token checks (signature by the provider's JWKS, iss, aud, exp, nonce, level), userinfo and
 * RP-initiated logout. Discovery happens on first use and is retried if the provider was not reachable yet.
 */
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import * as oidc from 'openid-client';
import { isLocalHttp, type PortalConfig } from './config.ts';
import type { PendingLogin, PortalUser } from './sessions.ts';
import type { Lang } from './views.ts';

/** The provider refused or could not complete the login; `code` is an OAuth error code or one of ours. */
export class LoginError extends Error {
  readonly code: string;
  constructor(code: string, message = code) {
    super(message);
    this.code = code;
  }
}

/** The page's language first, then the other one (OpenID Connect `ui_locales`: preferred languages, in order). */
const uiLocales = (lang: Lang) => (lang === 'en' ? 'en vi' : 'vi en');

/** A relying party bound to one portal configuration. */
export function relyingParty(config: PortalConfig) {
  let discovered: Promise<oidc.Configuration> | undefined;
  let jwks: JWTVerifyGetKey | undefined;
  const redirectUri = `${config.baseUrl}/callback`;

  /** The provider's metadata and this client's credentials; http is allowed only for an issuer on localhost. */
  function configuration(): Promise<oidc.Configuration> {
    discovered ??= oidc
      .discovery(
        new URL(config.issuer),
        config.clientId,
        config.clientSecret ? { client_secret: config.clientSecret } : { token_endpoint_auth_method: 'none' },
        config.clientSecret ? oidc.ClientSecretBasic(config.clientSecret) : oidc.None(),
        {
          // Verify ID token signatures against the provider's JWKS (openid-client otherwise relies on TLS alone).
          execute: [
            oidc.enableNonRepudiationChecks,
            ...(isLocalHttp(config.issuer) ? [oidc.allowInsecureRequests] : []),
          ],
        },
      )
      .catch((err) => {
        discovered = undefined;
        throw err;
      });
    return discovered;
  }

  return {
    configuration,

    /**
     * Starts a login: the URL to send the browser to and the checks to keep in the session. `lang` is the page's
     * language, asked of the provider's pages first (`ui_locales`).
     */
    async start(lang: Lang = 'vi'): Promise<{ url: URL; pending: PendingLogin }> {
      const c = await configuration();
      const pending: PendingLogin = {
        state: oidc.randomState(),
        nonce: oidc.randomNonce(),
        codeVerifier: oidc.randomPKCECodeVerifier(),
        createdAt: Date.now(),
      };
      const url = oidc.buildAuthorizationUrl(c, {
        redirect_uri: redirectUri,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
        state: pending.state,
        nonce: pending.nonce,
        ui_locales: uiLocales(lang),
        // Level 2 is asked for here; the portal still checks the `acr` it gets (acr_values is a request, not a rule).
        ...(config.minLevel === 2 ? { acr_values: config.level2Acr } : {}),
      });
      return { url, pending };
    },

    /** Completes a login from the callback URL: code exchange, ID token checks, userinfo. */
    async finish(callbackUrl: URL, pending: PendingLogin): Promise<PortalUser> {
      const c = await configuration();
      const tokens = await oidc.authorizationCodeGrant(c, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims || !tokens.id_token) throw new LoginError('invalid_id_token', 'no ID token');
      if (config.minLevel === 2 && claims.acr !== config.level2Acr)
        throw new LoginError('insufficient_level', `acr ${String(claims.acr)} is below level 2`);
      const profile = await oidc.fetchUserInfo(c, tokens.access_token, claims.sub);
      return {
        sub: claims.sub,
        sid: typeof claims.sid === 'string' ? claims.sid : undefined,
        acr: typeof claims.acr === 'string' ? claims.acr : undefined,
        amr: Array.isArray(claims.amr) ? claims.amr.map(String) : [],
        authTime: claims.auth_time,
        profile: { ...profile },
        idToken: tokens.id_token,
      };
    },

    /** Where to send the browser to sign out at the provider (and so of every portal). */
    async endSessionUrl(user: PortalUser, state: string, lang: Lang = 'vi'): Promise<URL> {
      return oidc.buildEndSessionUrl(await configuration(), {
        id_token_hint: user.idToken,
        post_logout_redirect_uri: `${config.baseUrl}/`,
        state,
        ui_locales: uiLocales(lang),
      });
    },

    /** The provider's signing keys (fetched and cached by jose; refetched when an unknown `kid` appears). */
    async jwks(): Promise<JWTVerifyGetKey> {
      if (!jwks) {
        const uri = (await configuration()).serverMetadata().jwks_uri;
        if (!uri) throw new Error('the provider publishes no jwks_uri');
        jwks = createRemoteJWKSet(new URL(uri));
      }
      return jwks;
    },
  };
}

/** A relying party as built by {@link relyingParty}. */
export type RelyingParty = ReturnType<typeof relyingParty>;
