/**
 * dinhdanh's own pages (the citizen's /account, the staff console /admin) sign in through the provider as first-party
 * clients: authorization code with PKCE S256, state and verifier kept in a short cookie on the pages' path, and the
 * code checked as a client would and redeemed in process (never exchanged over HTTP): it must be unconsumed, for
 * this client and redirect URI, match the verifier, and belong to the browser's own SSO session.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { AppError } from '../errors.ts';
import type { ProviderRef } from '../oidc/index.ts';

/** One first-party client's sign-in: where its pages live and how it is registered. */
export interface FirstParty {
  host: ProviderRef;
  issuer: string;
  clientId: string;
  /** The pages' path (`/account`, `/admin`): the flow cookie's path, and `<path>/callback` the redirect URI. */
  path: string;
  cookie: string;
}

const challenge = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** Starts and finishes sign-ins for one first-party client. */
export function firstPartySignIn(c: FirstParty) {
  const redirectUri = `${c.issuer}${c.path}/callback`;
  return {
    /** To the provider's login (`params`: more authorization parameters, e.g. a level or `prompt=login`). */
    start(ctx: Context, params: Record<string, string> = {}) {
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      ctx.cookies.set(c.cookie, `${state}.${verifier}`, {
        httpOnly: true,
        sameSite: 'lax',
        path: c.path,
        maxAge: 600_000,
      });
      const auth = new URL(`${c.issuer}/auth`);
      auth.search = new URLSearchParams({
        client_id: c.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: redirectUri,
        state,
        code_challenge: challenge(verifier),
        code_challenge_method: 'S256',
        ...params,
      }).toString();
      ctx.redirect(auth.toString());
    },
    /**
     * The callback: the provider's answer checked and its code destroyed. `refused`: the provider answered an error
     * (the citizen cancelled, a level could not be reached); else the signed-in session. A mismatch is a 400.
     */
    async finish(ctx: Context) {
      const [state, verifier] = (ctx.cookies.get(c.cookie) ?? '').split('.');
      ctx.cookies.set(c.cookie, null, { path: c.path });
      if (!state || !verifier || ctx.query.state !== state)
        throw new AppError('invalid_input', `sign-in state does not match; start again from ${c.path}`);
      if (typeof ctx.query.error === 'string') return { refused: true as const };
      const value = typeof ctx.query.code === 'string' ? ctx.query.code.slice(0, 200) : '';
      const code = value ? await c.host.current.AuthorizationCode.find(value) : undefined;
      const session = await c.host.current.Session.get(ctx as never);
      const ok =
        !!code &&
        !(code as unknown as { consumed?: number }).consumed &&
        code.clientId === c.clientId &&
        code.redirectUri === redirectUri &&
        code.codeChallengeMethod === 'S256' &&
        code.codeChallenge === challenge(verifier) &&
        !!session.accountId &&
        code.accountId === session.accountId;
      await code?.destroy();
      if (!ok) throw new AppError('invalid_input', `sign-in could not be confirmed; start again from ${c.path}`);
      return { refused: false as const, session };
    },
  };
}
