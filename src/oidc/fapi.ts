/**
 * The FAPI 2.0 Security Profile, per portal: a client registered with `dinhdanh_profile: "fapi2"` gets oidc-provider's
 * FAPI 2.0 behaviour (`features.fapi.profile`) and, from its metadata and the hooks below, everything else the profile
 * asks of an authorization server. Threat: a high-value portal whose authorization request could be tampered with in
 * the browser, whose code or tokens could be replayed by whoever intercepts them, or whose client authentication
 * rests on a shared secret. Other portals are untouched.
 *
 * What the profile requires, and where:
 * - PAR, with the redirect URI in it: `require_pushed_authorization_requests` (set here), `features.fapi`.
 * - PKCE S256: required for every client already (`pkce.required`); S256 is the only method offered.
 * - private_key_jwt, aud = the issuer only: registration refuses another method; `assertClientAssertion`.
 *   (tls_client_auth and mTLS-bound tokens are not offered: there is no client-certificate path to the nodes.)
 * - DPoP-bound tokens: `dpop_bound_access_tokens` (set here) makes a token request without a proof fail with
 *   `invalid_grant` (what the FAPI 2.0 conformance suite expects, with `invalid_request`); a code pushed with
 *   `dpop_jkt` or a DPoP proof at PAR is bound to that key.
 * - ES256 or PS256 for every signed artefact: ID tokens and JARM responses (registration), client assertions and DPoP
 *   proofs (`assertClientAssertion`), request objects (`assertRequestObject`).
 * - `iss` in the authorization response (RFC 9207): oidc-provider always adds it (inside the JWT with JARM).
 * - Codes live at most 60 s: `ttl.AuthorizationCode` is 60 for every client.
 * - No refresh token rotation: `rotateRefreshToken`.
 * - Response mode `query` or `jwt` (`query.jwt`): `response_modes` (set here).
 */
import { decodeProtectedHeader } from 'jose';
import { type Client, type ClientMetadata, errors, type FapiProfile, type KoaContextWithOIDC } from 'oidc-provider';

/** The value of `dinhdanh_profile` for the FAPI 2.0 Security Profile. */
export const FAPI2 = 'fapi2';

/** Signature algorithms a FAPI 2.0 portal's artefacts may use (FAPI 2.0 also permits Ed25519; we do not). */
export const FAPI_ALGS: readonly string[] = ['ES256', 'PS256'];

/** Response modes a FAPI 2.0 portal may use: the code in the query, or in a signed JWT (JARM) in the query. */
export const FAPI_RESPONSE_MODES: readonly string[] = ['query', 'jwt', 'query.jwt'];

/** Whether a client is registered for the FAPI 2.0 Security Profile. */
export function isFapi2(client: Pick<Client, 'metadata'> | undefined): boolean {
  return client?.metadata().dinhdanh_profile === FAPI2;
}

/** `features.fapi.profile`: oidc-provider's FAPI 2.0 behaviour for FAPI 2.0 portals only. */
export function fapiProfile(_ctx: KoaContextWithOIDC, client: Client): FapiProfile | undefined {
  return isFapi2(client) ? '2.0' : undefined;
}

const SIGNED_BY_ALG = [
  'id_token_signed_response_alg',
  'authorization_signed_response_alg',
  'request_object_signing_alg',
  'token_endpoint_auth_signing_alg',
] as const;

/**
 * Checks and completes a FAPI 2.0 portal's metadata (from `extraClientMetadata.validator`, so on every load of the
 * client): refuses what the profile forbids, sets what it requires.
 */
export function fapi2Metadata(metadata: ClientMetadata): void {
  const m = metadata as Record<string, unknown>;
  if (m.token_endpoint_auth_method !== 'private_key_jwt')
    throw new errors.InvalidClientMetadata('a FAPI 2.0 client must use token_endpoint_auth_method private_key_jwt');
  for (const key of SIGNED_BY_ALG) {
    if (m[key] !== undefined && !FAPI_ALGS.includes(String(m[key])))
      throw new errors.InvalidClientMetadata(`a FAPI 2.0 client's ${key} must be ES256 or PS256`);
  }
  const modes = m.response_modes as unknown[] | undefined;
  if (modes !== undefined && !(Array.isArray(modes) && modes.every((x) => FAPI_RESPONSE_MODES.includes(String(x)))))
    throw new errors.InvalidClientMetadata('a FAPI 2.0 client may only use the query or jwt response modes');
  m.response_modes = modes ?? [...FAPI_RESPONSE_MODES];
  m.require_pushed_authorization_requests = true;
  m.dpop_bound_access_tokens = true;
}

const headerAlg = (jwt: string): unknown => {
  try {
    return decodeProtectedHeader(jwt).alg;
  } catch {
    return undefined;
  }
};

/**
 * `assertJwtClientAuthClaimsAndHeader`: runs once a client has authenticated with a JWT, at every endpoint, before
 * the request is served. For a FAPI 2.0 portal: the assertion's audience is the issuer alone, and the assertion and
 * any DPoP proof on the request (PAR, token) are signed with ES256 or PS256.
 */
export async function assertClientAssertion(
  ctx: KoaContextWithOIDC,
  claims: Record<string, unknown>,
  header: Record<string, unknown>,
  client: Client,
): Promise<void> {
  if (!isFapi2(client)) return;
  if (claims.aud !== ctx.oidc.issuer)
    throw new errors.InvalidClientAuth('audience (aud) must equal the issuer identifier url');
  if (!FAPI_ALGS.includes(String(header.alg)))
    throw new errors.InvalidClientAuth('a FAPI 2.0 client signs its client assertions with ES256 or PS256');
  const proof = ctx.get('dpop');
  if (proof && !FAPI_ALGS.includes(String(headerAlg(proof))))
    throw new errors.InvalidDpopProof('a FAPI 2.0 client signs its DPoP proofs with ES256 or PS256');
}

/** Longest a FAPI request object may live between `nbf` and `exp` (oidc-provider's own FAPI rule). */
const REQUEST_OBJECT_LIFETIME = 3600;

/**
 * `features.requestObjects.assertJwtClaimsAndHeader`: for a FAPI 2.0 portal, a request object has `exp`, `nbf` and
 * `aud`, lives at most an hour, and is signed with ES256 or PS256. Others: no rule beyond the standard. A pushed
 * request met again at the authorization endpoint was checked when pushed (and, pushed without a request object, is
 * oidc-provider's own unsigned wrapper of the pushed parameters).
 */
export async function assertRequestObject(
  ctx: KoaContextWithOIDC,
  claims: Record<string, unknown>,
  header: Record<string, unknown>,
  client: Client,
): Promise<void> {
  if (!isFapi2(client) || ctx.oidc.entities.PushedAuthorizationRequest) return;
  for (const claim of ['exp', 'nbf', 'aud']) {
    if (claims[claim] === undefined)
      throw new errors.InvalidRequestObject(`Request Object is missing the '${claim}' claim`);
  }
  const lifetime = Number(claims.exp) - Number(claims.nbf);
  if (!(lifetime > 0 && lifetime <= REQUEST_OBJECT_LIFETIME))
    throw new errors.InvalidRequestObject("Request Object 'exp' claim too far from 'nbf' claim");
  if (!FAPI_ALGS.includes(String(header.alg)))
    throw new errors.InvalidRequestObject('a FAPI 2.0 client signs its request objects with ES256 or PS256');
}

/**
 * `rotateRefreshToken`: a FAPI 2.0 portal's refresh token is not rotated (FAPI 2.0 §5.3.2.1: it is already bound to
 * the portal's private_key_jwt authentication and every use needs its DPoP proof). Others: rotated on every use.
 */
export function rotateRefreshToken(ctx: KoaContextWithOIDC): boolean {
  return !isFapi2(ctx.oidc.client);
}
