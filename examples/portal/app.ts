/**
 * An agency portal that signs citizens in with dinhdanh. Routes:
 *   GET  /                     signed out: the sign-in button; signed in: the claims received and a logout button
 *   GET  /error?code=          a failed login's explanation (where the error page's language switch leads)
 *   GET  /login                authorization request (code + PKCE S256, state, nonce; level 2 when MIN_LEVEL=2)
 *   GET  /callback             checks state, exchanges the code, keeps the claims in a server-side session
 *   POST /logout               ends the local session, then RP-initiated logout at the provider
 *   POST /backchannel-logout   the provider's logout token: ends every local session of that provider session
 * Any page takes `?lang=vi|en` (the language switch); the choice is remembered in a cookie and sent to the provider
 * as `ui_locales`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import * as oidc from 'openid-client';
import { InvalidLogoutToken, logoutTokenVerifier } from './backchannel.ts';
import type { PortalConfig } from './config.ts';
import { LoginError, relyingParty } from './relying-party.ts';
import { type PortalSession, SessionStore } from './sessions.ts';
import { errorPage, type Lang, pickLang, STYLE, signedInPage, signedOutPage } from './views.ts';

/** A portal instance: its Koa app, its sessions (inspectable in tests) and start/stop. */
export interface Portal {
  config: PortalConfig;
  app: Koa;
  sessions: SessionStore;
  listen(): Promise<Server>;
  close(): Promise<void>;
}

/** Writes one JSON log line (stderr); the example keeps logging plain on purpose. */
export type PortalLog = (event: string, details?: Record<string, unknown>) => void;

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** OAuth error codes are short ASCII words; anything else from the query string is not shown as is. */
const errorCode = (value: unknown) =>
  typeof value === 'string' && /^[a-z0-9_]{1,64}$/.test(value) ? value : 'invalid_response';

/** An error and the errors that caused it (fetch failures hide the network error two levels down). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err; e && typeof e === 'object' && out.length < 5; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}

export function createPortal(config: PortalConfig, log: PortalLog = () => {}): Portal {
  const sessions = new SessionStore();
  const rp = relyingParty(config);
  const verifyLogoutToken = logoutTokenVerifier({ issuer: config.issuer, clientId: config.clientId, jwks: rp.jwks });
  // Portals on one host (localhost:3001, localhost:3002) share cookies across ports: one cookie name per portal.
  const cookieName = `portal_${config.clientId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const https = config.baseUrl.startsWith('https:');

  const langCookie = 'portal_lang';
  const langOf = (ctx: Context): Lang =>
    pickLang(ctx.query.lang, ctx.cookies.get(langCookie), ctx.get('accept-language'));
  const sessionOf = (ctx: Context): PortalSession | undefined => sessions.get(ctx.cookies.get(cookieName));
  const setCookie = (ctx: Context, s: PortalSession) =>
    ctx.cookies.set(cookieName, s.id, { httpOnly: true, sameSite: 'lax', secure: https, path: '/', overwrite: true });
  const showError = (ctx: Context, code: string, status = 400) => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = errorPage(config, langOf(ctx), code);
  };

  const router = new Router();

  router.get('/style.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.body = STYLE;
  });

  router.get('/', (ctx) => {
    const s = sessionOf(ctx);
    ctx.type = 'html';
    if (s?.user) {
      ctx.body = signedInPage(config, langOf(ctx), s.user);
      return;
    }
    // Back from the provider's logout: the state we sent proves this is the logout we started.
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : undefined;
    const loggedOut = !!(s?.logoutState && state && sameText(s.logoutState, state));
    if (s && loggedOut) s.logoutState = undefined;
    ctx.body = signedOutPage(config, langOf(ctx), loggedOut ? 'logged_out' : undefined);
  });

  router.get('/error', (ctx) => {
    ctx.type = 'html';
    ctx.body = errorPage(config, langOf(ctx), errorCode(ctx.query.code));
  });

  router.get('/login', async (ctx) => {
    const s = sessionOf(ctx) ?? sessions.create();
    setCookie(ctx, s);
    const { url, pending } = await rp.start(langOf(ctx));
    s.pending = pending;
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const s = sessionOf(ctx);
    const pending = s?.pending;
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    // The answer must belong to the request this browser started (CSRF, mix-up of windows).
    if (!s || !pending || !sameText(pending.state, state)) {
      log('login.rejected', { reason: 'state' });
      return showError(ctx, 'session_expired');
    }
    s.pending = undefined;
    if (ctx.query.error !== undefined) {
      const code = errorCode(ctx.query.error);
      log('login.refused', { error: code });
      return showError(ctx, code);
    }
    try {
      const user = await rp.finish(new URL(ctx.originalUrl, config.baseUrl), pending);
      // A new session id at sign-in (no session fixation).
      sessions.destroy(s.id);
      const fresh = sessions.create();
      fresh.user = user;
      setCookie(ctx, fresh);
      log('login', { sub: user.sub, acr: user.acr });
      ctx.redirect('/');
    } catch (err) {
      const code =
        err instanceof LoginError
          ? err.code
          : err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError
            ? errorCode(err.error)
            : 'invalid_response';
      log('login.failed', { error: code, message: (err as Error).message });
      return showError(ctx, code);
    }
  });

  router.post('/logout', async (ctx) => {
    const s = sessionOf(ctx);
    if (!s?.user) return ctx.redirect('/');
    const user = s.user;
    // The local session ends now, whatever happens at the provider.
    s.user = undefined;
    s.logoutState = randomBytes(16).toString('base64url');
    log('logout', { sub: user.sub });
    ctx.redirect((await rp.endSessionUrl(user, s.logoutState, langOf(ctx))).href);
  });

  router.post(
    '/backchannel-logout',
    bodyParser({ enableTypes: ['form'], formLimit: '16kb', encoding: 'utf-8' }),
    async (ctx) => {
      ctx.set('cache-control', 'no-store');
      const token = (ctx.request.body as Record<string, unknown> | undefined)?.logout_token;
      try {
        if (typeof token !== 'string' || !token) throw new InvalidLogoutToken('no logout_token');
        const target = await verifyLogoutToken(token);
        const ended = sessions.destroyWhere(target);
        log('backchannel_logout', { ...target, ended });
        ctx.status = 200;
        ctx.body = '';
      } catch (err) {
        if (!(err instanceof InvalidLogoutToken)) throw err;
        log('backchannel_logout.rejected', { reason: err.message });
        ctx.status = 400;
        ctx.body = { error: 'invalid_request' };
      }
    },
  );

  const app = new Koa();
  app.use(async (ctx: Context, next: Next) => {
    ctx.set(
      'content-security-policy',
      [
        "default-src 'none'",
        "style-src 'self'",
        // The logout form's redirect goes on to the provider; browsers apply form-action to it.
        `form-action 'self' ${new URL(config.issuer).origin}`,
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
    );
    ctx.set('x-content-type-options', 'nosniff');
    // The callback URL holds the authorization code: never send it on as a Referer.
    ctx.set('referrer-policy', 'no-referrer');
    if (!ctx.path.endsWith('.css')) ctx.set('cache-control', 'no-store');
    // The language switch: remembered for this portal's later pages (the choice is not a secret).
    const lang = ctx.query.lang;
    if (lang === 'vi' || lang === 'en')
      ctx.cookies.set(langCookie, lang, { httpOnly: true, sameSite: 'lax', secure: https, path: '/', maxAge: 31536e6 });
    try {
      await next();
    } catch (err) {
      log('error', { path: ctx.path, message: (err as Error).message });
      const unreachable = causes(err).some((e) => (e as { code?: string }).code === 'ECONNREFUSED');
      showError(ctx, unreachable ? 'provider_unavailable' : 'server_error', unreachable ? 503 : 500);
    }
  });
  app.use(router.routes()).use(router.allowedMethods());

  let server: Server | undefined;
  return {
    config,
    app,
    sessions,
    listen() {
      server = createServer(app.callback());
      const s = server;
      return new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(config.port, config.host, () => resolve(s));
      });
    },
    async close() {
      if (!server?.listening) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}
