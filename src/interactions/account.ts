/**
 * The citizen's account pages (/account): who they are in the registry, their level, their own sign-in history.
 * They sign in through the provider like any portal (first-party client, PKCE); the page then reads the provider's
 * SSO session, so signing out anywhere signs out here too.
 */
import { createHash, randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import type { Provider } from 'oidc-provider';
import { findAccountProfile } from '../accounts/index.ts';
import { subjectHistory } from '../audit/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { ACCOUNT_CLIENT_ID, ACR } from '../oidc/index.ts';
import { h, type Lang, page, pickLang, t } from '../ui/index.ts';

/** What the account routes need. */
export interface AccountDeps {
  provider: Provider;
  db: Kysely<DB>;
  issuer: string;
  pseudonym: (pin: string) => string;
}

const FLOW_COOKIE = 'account_flow';

/** Masks a personal ID for display: first 3 and last 2 digits. */
const mask = (pin: string) => `${pin.slice(0, 3)}*******${pin.slice(-2)}`;

/** Routes for /account. */
export function accountRoutes({ provider, db, issuer, pseudonym }: AccountDeps): Router {
  const router = new Router({ prefix: '/account' });
  const redirectUri = `${issuer}/account/callback`;
  const lang = (ctx: Context): Lang => pickLang(ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));

  router.get('/', async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const session = await provider.Session.get(ctx as never);
    const profile = session.accountId ? await findAccountProfile(db, session.accountId) : undefined;
    if (!profile) {
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      ctx.cookies.set(FLOW_COOKIE, `${state}.${verifier}`, {
        httpOnly: true,
        sameSite: 'lax',
        path: '/account',
        maxAge: 600_000,
      });
      const auth = new URL(`${issuer}/auth`);
      auth.search = new URLSearchParams({
        client_id: ACCOUNT_CLIENT_ID,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: redirectUri,
        state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      }).toString();
      ctx.redirect(auth.toString());
      return;
    }
    const l = lang(ctx);
    const events = [
      ...(await subjectHistory(db, profile.accountId, 20)),
      ...(await subjectHistory(db, pseudonym(profile.resident.pin), 20)),
    ]
      .filter((e) => e.action === 'login')
      .sort((a, b) => b.seq - a.seq)
      .slice(0, 20);
    const names = new Map<string, string>();
    for (const id of new Set(events.map((e) => e.clientId).filter((c): c is string => !!c))) {
      names.set(id, (await provider.Client.find(id))?.clientName ?? id);
    }
    const rows = events
      .map(
        (
          e,
        ) => `<tr><td>${h(e.at.toISOString().replace('T', ' ').slice(0, 19))} UTC</td><td>${h(names.get(e.clientId ?? '') ?? '')}</td>
<td>${h(t(l, e.outcome === 'success' ? 'resultSuccess' : 'resultFailure'))}${
          e.details.acr === ACR.level2 ? ` (${h(t(l, 'level2'))})` : ''
        }</td><td>${h(e.ip ?? '')}</td></tr>`,
      )
      .join('');
    const logout = `/session/end?client_id=${ACCOUNT_CLIENT_ID}`;
    ctx.body = page(
      l,
      t(l, 'accountTitle'),
      `<dl>
<dt>${h(t(l, 'accountName'))}</dt><dd>${h(profile.resident.fullName)}</dd>
<dt>${h(t(l, 'accountBirth'))}</dt><dd>${h(profile.resident.birthDate)}</dd>
<dt>${h(t(l, 'accountPin'))}</dt><dd>${h(mask(profile.resident.pin))}</dd>
<dt>${h(t(l, 'accountLevel'))}</dt><dd>${h(t(l, profile.level === 2 ? 'level2' : 'level1'))}</dd>
</dl>
<h2>${h(t(l, 'historyTitle'))}</h2>
<table class="history"><thead><tr><th>${h(t(l, 'historyTime'))}</th><th>${h(t(l, 'historyPortal'))}</th><th>${h(
        t(l, 'historyResult'),
      )}</th><th>${h(t(l, 'historyPlace'))}</th></tr></thead><tbody>${rows}</tbody></table>
<p><a href="${h(logout)}">${h(t(l, 'signOut'))}</a></p>`,
      `/account?lang=${l === 'vi' ? 'en' : 'vi'}`,
    );
  });

  router.get('/callback', async (ctx) => {
    const [state] = (ctx.cookies.get(FLOW_COOKIE) ?? '').split('.');
    ctx.cookies.set(FLOW_COOKIE, null, { path: '/account' });
    if (!state || ctx.query.state !== state) throw new AppError('invalid_input', 'sign-in state does not match');
    if (typeof ctx.query.error === 'string') throw new AppError('invalid_input', 'sign-in was not completed');
    ctx.redirect('/account');
  });

  return router;
}
