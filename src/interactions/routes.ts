/**
 * Interaction routes: the pages oidc-provider sends the citizen to (login, consent). Each handler loads the
 * interaction, asserts its prompt, calls a service and finishes the interaction. Guards are listed on the route.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Kysely } from 'kysely';
import { errors, type InteractionResults, type Provider } from 'oidc-provider';
import { verifyPassword } from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import { ACR } from '../oidc/index.ts';
import { pickLang, t } from '../ui/index.ts';
import { byInteraction, csrfToken, requireCsrf } from './csrf.ts';
import { consentPage, loginPage } from './views.ts';

/** What the routes need. */
export interface InteractionDeps {
  provider: Provider;
  db: Kysely<DB>;
  hasher: PasswordHasher;
  csrfSecret: string;
  /** Failed-login limits, shared by all nodes. */
  loginLimiter: Limiter;
  /** Keyed pseudonym of a personal ID, for limits and the audit trail. */
  pseudonym: (pin: string) => string;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const form = (ctx: Context) => (ctx.request.body ?? {}) as Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Builds the router for `/interaction/*`. */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { provider, db, hasher, csrfSecret, loginLimiter, pseudonym } = deps;
  const router = new Router({ prefix: '/interaction' });
  const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '8kb', encoding: 'utf-8' });
  const csrf = requireCsrf(csrfSecret, byInteraction);

  const lang = (ctx: Context) =>
    pickLang(form(ctx).lang ?? ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));

  async function load(ctx: Context, prompt?: string): Promise<Details> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) throw new errors.SessionNotFound('interaction mismatch');
    if (prompt && details.prompt.name !== prompt)
      throw new AppError('invalid_input', `this step expects ${details.prompt.name}`);
    return details;
  }

  async function clientName(details: Details): Promise<string> {
    const client = await provider.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
  }

  const remember = async (ctx: Context, next: Next) => {
    const q = ctx.query.lang;
    if (q === 'vi' || q === 'en') ctx.cookies.set('lang', q, { httpOnly: true, sameSite: 'lax', maxAge: 31536e6 });
    ctx.set('cache-control', 'no-store');
    await next();
  };

  router.get('/:uid', remember, async (ctx) => {
    const details = await load(ctx);
    const base = {
      lang: lang(ctx),
      uid: details.uid,
      csrf: csrfToken(csrfSecret, details.uid),
      clientName: await clientName(details),
    };
    if (details.prompt.name === 'login') {
      ctx.body = loginPage(base);
      return;
    }
    if (details.prompt.name === 'consent') {
      const missing = (details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
      ctx.body = consentPage({ ...base, scopes: missing });
      return;
    }
    throw new AppError('invalid_input', `unsupported prompt ${details.prompt.name}`);
  });

  router.post('/:uid/login', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx, 'login');
    const body = form(ctx);
    const pin = str(body.pin).replace(/[\s.-]/g, '');
    const clientId = String(details.params.client_id);
    const key = pseudonym(pin.slice(0, 32));
    const who = { clientId, ip: ctx.ip, userAgent: ctx.get('user-agent') };
    const blocked = await loginLimiter.blockedFor(key, ctx.ip);
    if (blocked) {
      await recordEvent(db, {
        actor: { type: 'citizen' },
        action: 'login',
        outcome: 'failure',
        reason: 'locked',
        subject: key,
        ...who,
      });
      throw new AppError('rate_limited', 'too many failed attempts', { retryAfter: blocked });
    }
    const result = await verifyPassword(db, hasher, pin, str(body.password));
    if (!result.ok) {
      const { delayMs, lockedFor } = await loginLimiter.fail(key, ctx.ip);
      await recordEvent(db, {
        actor: { type: 'citizen' },
        action: 'login',
        outcome: 'failure',
        reason: result.reason,
        subject: key,
        ...who,
      });
      if (lockedFor) {
        await recordEvent(db, {
          actor: { type: 'system' },
          action: 'lockout',
          outcome: 'success',
          subject: key,
          details: { seconds: lockedFor },
          ...who,
        });
      }
      await new Promise((r) => setTimeout(r, delayMs));
      const l = lang(ctx);
      ctx.status = 401;
      ctx.body = loginPage({
        lang: l,
        uid: details.uid,
        csrf: csrfToken(csrfSecret, details.uid),
        clientName: await clientName(details),
        pin: pin.slice(0, 12),
        error: result.reason === 'malformed_pin' && !/^\d{12}$/.test(pin) ? t(l, 'pinFormat') : t(l, 'loginFailed'),
      });
      return;
    }
    await loginLimiter.succeed(key);
    await recordEvent(db, {
      actor: { type: 'citizen', id: result.accountId },
      action: 'login',
      outcome: 'success',
      subject: result.accountId,
      details: { acr: ACR.level1, amr: ['pwd'] },
      ...who,
    });
    const results: InteractionResults = {
      login: { accountId: result.accountId, acr: ACR.level1, amr: ['pwd'], remember: true },
    };
    await provider.interactionFinished(ctx.req, ctx.res, results, { mergeWithLastSubmission: false });
  });

  router.post('/:uid/consent', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx, 'consent');
    const { prompt, params, session } = details;
    if (!session) throw new errors.SessionNotFound('no session');
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    if (!grant) throw new errors.SessionNotFound('grant not found');
    const d = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {}))
      grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await recordEvent(db, {
      actor: { type: 'citizen', id: session.accountId },
      action: 'consent.given',
      outcome: 'success',
      subject: session.accountId,
      clientId: String(params.client_id),
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { scopes: d.missingOIDCScope ?? [], claims: d.missingOIDCClaims ?? [] },
    });
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  router.post('/:uid/abort', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx);
    await recordEvent(db, {
      actor: { type: 'citizen', id: details.session?.accountId },
      action: 'consent.denied',
      outcome: 'success',
      subject: details.session?.accountId,
      clientId: String(details.params.client_id),
      ip: ctx.ip,
    });
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'the citizen declined' },
      { mergeWithLastSubmission: false },
    );
  });

  return router;
}
