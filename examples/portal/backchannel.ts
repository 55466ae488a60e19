/**
 * Back-channel logout (OpenID Connect Back-Channel Logout 1.0, section 2.6): the provider POSTs a signed logout
 * token when the citizen signs out anywhere; the portal ends its own sessions for that provider session.
 *
 * Threat note: the endpoint is reachable by anyone, so a token counts only if it is signed by a key in the provider's
 * JWKS, issued by this issuer for this client, explicitly typed `logout+jwt`, carries the back-channel logout event,
 * names a `sid` or `sub`, has no `nonce` (so an ID token can never pass as a logout token) and was not seen before.
 */
import { errors, type JWTVerifyGetKey, jwtVerify } from 'jose';

export const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Who to sign out. */
export interface LogoutTarget {
  sid?: string;
  sub?: string;
}

/** Why a logout token was refused (logged by the portal, never sent back in detail). */
export class InvalidLogoutToken extends Error {}

/** Verifies logout tokens for one client; remembers accepted `jti` values until they expire (replay). */
export function logoutTokenVerifier(opts: { issuer: string; clientId: string; jwks: () => Promise<JWTVerifyGetKey> }) {
  const seen = new Map<string, number>();
  return async function verifyLogoutToken(token: string): Promise<LogoutTarget> {
    let payload: Record<string, unknown>;
    try {
      // Keys are fetched only for a well-formed token (garbage is refused without contacting the provider).
      const key: JWTVerifyGetKey = async (header, input) => (await opts.jwks())(header, input);
      ({ payload } = await jwtVerify(token, key, {
        issuer: opts.issuer,
        audience: opts.clientId,
        typ: 'logout+jwt',
        algorithms: ['ES256', 'PS256', 'RS256', 'EdDSA'],
        requiredClaims: ['iat', 'exp', 'jti'],
        clockTolerance: 30,
      }));
    } catch (err) {
      if (err instanceof errors.JOSEError) throw new InvalidLogoutToken(`${err.code}: ${err.message}`);
      throw err;
    }
    const events = payload.events;
    if (!events || typeof events !== 'object' || Array.isArray(events)) throw new InvalidLogoutToken('no events claim');
    const event = (events as Record<string, unknown>)[LOGOUT_EVENT];
    if (!event || typeof event !== 'object') throw new InvalidLogoutToken('not a back-channel logout event');
    if ('nonce' in payload) throw new InvalidLogoutToken('a logout token has no nonce');
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    if (!sid && !sub) throw new InvalidLogoutToken('neither sid nor sub');
    const jti = String(payload.jti);
    const now = Date.now();
    for (const [k, until] of seen) if (until < now) seen.delete(k);
    if (seen.has(jti)) throw new InvalidLogoutToken('logout token replayed');
    seen.set(jti, (Number(payload.exp) + 60) * 1000);
    return { ...(sid ? { sid } : {}), ...(sub ? { sub } : {}) };
  };
}
