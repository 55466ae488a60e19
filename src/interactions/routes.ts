/**
 * Interaction routes: the pages oidc-provider sends the citizen to (login, consent). Each handler loads the
 * interaction, asserts its prompt, calls a service and finishes the interaction. Guards are listed on the route.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Kysely } from 'kysely';
import { errors, type InteractionResults, type Provider } from 'oidc-provider';
import {
  authenticationOptions,
  credentialIdOf,
  findAccountProfile,
  type LoginFailure,
  listPasskeys,
  type PasskeyView,
  type PendingResetNotice,
  passkeyAssurance,
  relyingParty,
  resetNotice,
  secondFactorState,
  verifyPasskeyAssertion,
  verifyPassword,
  verifySecondFactor,
} from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { clientMinLevel, type ProviderRef, requirementOf } from '../oidc/index.ts';
import { pickLang, t } from '../ui/index.ts';
import { mask } from './account-page.ts';
import { byInteraction, csrfToken, requireCsrf } from './csrf.ts';
import { deviceCookies } from './device.ts';
import type { FormError } from './forms.ts';
import { passwordProof } from './proof.ts';
import { consentPage, loginPage, otpPage, resetNoticePage, unmetPage } from './views.ts';

/** What the routes need. */
export interface InteractionDeps {
  /** The current provider (it is swapped when signing keys change). */
  host: ProviderRef;
  db: Kysely<DB>;
  hasher: PasswordHasher;
  csrfSecret: string;
  /** Failed-login limits, shared by all nodes. */
  loginLimiter: Limiter;
  /** Keyed pseudonym of a personal ID, for limits and the audit trail. */
  pseudonym: (pin: string) => string;
  /** acr values by level. */
  acr: Config['acr'];
  /** Master key (TOTP secrets are sealed under it). */
  master: Buffer;
  /** Wrong second-factor codes, per account. */
  codeLimiter: Limiter;
  /** Failed passkey assertions, per credential: never the password's counter (a failed passkey locks no password). */
  passkeyLimiter: Limiter;
  /** Login and step-up counters (absent: not counted). */
  metrics?: Metrics;
}

/** The phishing-resistant level (oidc/assurance.ts): level 2 proven with a passkey. */
const PHISHING_RESISTANT = 3;

/** Reasons for a login prompt that a second factor alone can answer (the password was proven in this session). */
const STEP_UP_ONLY = new Set(['assurance']);

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const form = (ctx: Context) => (ctx.request.body ?? {}) as Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Builds the router for `/interaction/*`. */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { host, db, hasher, csrfSecret, loginLimiter, pseudonym, acr, master, codeLimiter, metrics, passkeyLimiter } =
    deps;
  const proof = passwordProof(csrfSecret);
  const devices = deviceCookies(csrfSecret);

  /** The session's account when this login prompt is only a step-up (no new password needed). */
  function stepUpAccount(details: Details): string | undefined {
    const reasons = details.prompt.reasons as string[];
    const accountId = details.session?.accountId;
    return accountId && reasons.length > 0 && reasons.every((r) => STEP_UP_ONLY.has(r)) ? accountId : undefined;
  }

  async function requirement(details: Details) {
    const client = await host.current.Client.find(String(details.params.client_id));
    return requirementOf(acr, details.params, clientMinLevel(client as never));
  }

  async function accountLevel(accountId: string): Promise<number> {
    return (await secondFactorState(db, accountId))?.level ?? 0;
  }

  /** The canonical `acr` value of a level. */
  const acrOf = (level: number) =>
    level >= PHISHING_RESISTANT ? acr.phishingResistant : level >= 2 ? acr.level2 : acr.level1;

  /** A passkey that can give the phishing-resistant level: level 2, not flagged, device-bound if so configured. */
  const phishingResistantPasskey = (p: PasskeyView) =>
    p.level >= 2 && !p.cloneSuspected && !(acr.deviceBoundOnly && p.synced);

  /** True when the account has a passkey that proves level 2 (offered first on the second-factor page). */
  const hasLevel2Passkey = async (accountId: string) => (await listPasskeys(db, accountId)).some((p) => p.level >= 2);

  /**
   * The second-factor step for `need`: the page that asks for it (a passkey only when the phishing-resistant level is
   * required, a passkey first then TOTP otherwise), or the clear refusal when the account cannot give it.
   */
  async function secondFactorStep(
    ctx: Context,
    details: Details,
    accountId: string,
    need: { required: number },
    error?: FormError,
  ) {
    const page = { ...(await base(ctx, details)), error };
    if (need.required >= PHISHING_RESISTANT) {
      const ok = (await listPasskeys(db, accountId)).some(phishingResistantPasskey);
      return ok ? otpPage({ ...page, passkey: true, passkeyOnly: true }) : unmetPage({ ...page, phishing: true });
    }
    return otpPage({ ...page, passkey: await hasLevel2Passkey(accountId) });
  }

  async function base(ctx: Context, details: Details) {
    const profile = details.session?.accountId ? await findAccountProfile(db, details.session.accountId) : undefined;
    return {
      lang: lang(ctx, details),
      uid: details.uid,
      csrf: csrfToken(csrfSecret, details.uid),
      clientName: await clientName(details),
      signedIn: profile && { name: profile.resident.fullName, pin: mask(profile.resident.pin) },
    };
  }

  /**
   * Stores the step's result on the interaction this request loaded (`load`) and returns where the browser goes
   * next: what oidc-provider's interactionResult does, without loading the interaction (and its session) a second
   * time from the cookie.
   */
  async function storeResult(details: Details, result: InteractionResults, merge = false): Promise<string> {
    details.result = merge ? { ...details.lastSubmission, ...result } : result;
    await details.save(details.exp - Math.floor(Date.now() / 1000));
    return details.returnTo;
  }

  /** oidc-provider's interactionFinished on the loaded interaction: the result stored, 303 to the authorization. */
  async function finish(ctx: Context, details: Details, result: InteractionResults, merge = false) {
    const returnTo = await storeResult(details, result, merge);
    ctx.res.statusCode = 303;
    ctx.res.setHeader('Location', returnTo);
    ctx.res.setHeader('Content-Length', '0');
    ctx.res.end();
  }

  /**
   * The login's audit event and result. `notice`: the untold password reset, when the caller read it already (the
   * password step reads it with the login record); undefined: read it here.
   */
  async function finishLogin(
    ctx: Context,
    details: Details,
    accountId: string,
    level: number,
    amr: string[],
    action = 'login',
    notice?: PendingResetNotice | null,
  ) {
    await recordEvent(db, {
      actor: { type: 'citizen', id: accountId },
      action,
      outcome: 'success',
      subject: accountId,
      clientId: String(details.params.client_id),
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { acr: acrOf(level), amr },
    });
    if (action === 'step_up') metrics?.stepUp('success');
    else metrics?.login('success', Math.min(level, 2), String(details.params.client_id)); // phishing-resistant is level 2
    const results: InteractionResults = {
      login: { accountId, acr: acrOf(level), amr, remember: true },
    };
    // A password reset the citizen has not heard of: told once, here, before going on to the portal.
    const reset = notice === undefined ? await resetNotice.pending(db, accountId) : notice;
    if (!reset) return finish(ctx, details, results);
    const next = await storeResult(details, results);
    await resetNotice.told(db, accountId);
    ctx.body = resetNoticePage({ ...(await base(ctx, details)), ...reset, next });
  }
  const router = new Router({ prefix: '/interaction' });
  const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '8kb', encoding: 'utf-8' });
  const csrf = requireCsrf(csrfSecret, byInteraction);

  /**
   * The page's language: the citizen's own choice (the switch, remembered by cookie), then the portal's `ui_locales`
   * (OIDC Core 3.1.2.1: its preference, in order), then the browser's Accept-Language; Vietnamese by default.
   */
  const lang = (ctx: Context, details?: Details) => {
    const uiLocales = String(details?.params.ui_locales ?? '')
      .split(/\s+/)
      .map((x) => x.toLowerCase().split('-')[0])
      .find((x) => x === 'vi' || x === 'en');
    return pickLang(form(ctx).lang ?? ctx.query.lang, ctx.cookies.get('lang') ?? uiLocales, ctx.get('accept-language'));
  };

  async function load(ctx: Context, prompt?: string): Promise<Details> {
    const details = await host.current.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) throw new errors.SessionNotFound('interaction mismatch');
    if (prompt && details.prompt.name !== prompt)
      throw new AppError('invalid_input', `this step expects ${details.prompt.name}`);
    return details;
  }

  async function clientName(details: Details): Promise<string> {
    const client = await host.current.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
  }

  // Interaction pages are never cached (the language choice is remembered by the app, for every page).
  const remember = async (ctx: Context, next: Next) => {
    ctx.set('cache-control', 'no-store');
    await next();
  };

  router.get('/:uid', remember, async (ctx) => {
    const details = await load(ctx);
    const page = await base(ctx, details);
    if (details.prompt.name === 'login') {
      const stepUp = stepUpAccount(details);
      if (!stepUp) ctx.body = loginPage(page);
      else {
        const need = await requirement(details);
        ctx.body =
          (await accountLevel(stepUp)) >= 2
            ? await secondFactorStep(ctx, details, stepUp, need)
            : unmetPage({ ...page, phishing: need.required >= PHISHING_RESISTANT });
      }
      return;
    }
    if (details.prompt.name === 'consent') {
      const missing = (details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
      const resources = details.prompt.details.missingResourceScopes as Record<string, string[]> | undefined;
      ctx.body = consentPage({ ...page, scopes: missing, resources });
      return;
    }
    throw new AppError('invalid_input', `unsupported prompt ${details.prompt.name}`);
  });

  // The password login, as named steps: parse → limit → verify → (refuse) → next step (second factor, unmet, finish).

  /** What was typed, and who typed it: the limiter's key (the pseudonym, or this browser's own device key). */
  function parseLogin(ctx: Context, details: Details) {
    const body = form(ctx);
    const pin = str(body.pin).replace(/[\s.-]/g, '');
    const key = pseudonym(pin.slice(0, 32));
    // A browser that proved this ID's password before is limited on its own: others' failures never lock it out.
    const { key: limited, device } = devices.limiterKey(ctx, key);
    const who = { clientId: String(details.params.client_id), ip: ctx.ip, userAgent: ctx.get('user-agent') };
    return { pin, password: str(body.password), key, limited, device, who };
  }
  type LoginAttempt = ReturnType<typeof parseLogin>;

  /** Waits for this key's turn; a locked key is refused (429) and audited. */
  async function limit(a: LoginAttempt) {
    const blocked = await loginLimiter.reserve(a.limited, a.who.ip);
    if (!blocked) return;
    metrics?.login('locked', 0, a.who.clientId);
    await recordEvent(db, {
      actor: { type: 'citizen' },
      action: 'login',
      outcome: 'failure',
      reason: 'locked',
      subject: a.key,
      details: { device: a.device },
      ...a.who,
    });
    throw new AppError('rate_limited', 'too many failed attempts', { retryAfter: blocked });
  }

  /** The password check; if it never happened (database unavailable), the key's turn ends. */
  const verify = (a: LoginAttempt) =>
    verifyPassword(db, hasher, a.pin, a.password).catch(async (err) => {
      await loginLimiter.release(a.limited);
      throw err;
    });

  /** A failed check: counted (maybe a lock), audited, delayed, and the form again with one message. */
  async function refuse(ctx: Context, details: Details, a: LoginAttempt, reason: LoginFailure) {
    const { delayMs, lockedFor } = await loginLimiter.fail(a.limited, a.who.ip);
    const failure = { subject: a.key, details: { device: a.device }, ...a.who };
    await recordEvent(db, { actor: { type: 'citizen' }, action: 'login', outcome: 'failure', reason, ...failure });
    metrics?.login(reason, 0, a.who.clientId);
    if (lockedFor) {
      await recordEvent(db, {
        actor: { type: 'system' },
        action: 'lockout',
        outcome: 'success',
        ...failure,
        details: { seconds: lockedFor, device: a.device },
      });
    }
    await new Promise((r) => setTimeout(r, delayMs));
    const l = lang(ctx, details);
    ctx.status = 401;
    ctx.body = loginPage({
      ...(await base(ctx, details)),
      pin: a.pin.slice(0, 12),
      // One message for every failure (no enumeration); only a number of the wrong shape is said to be one.
      error:
        reason === 'malformed_pin' && !/^\d{12}$/.test(a.pin)
          ? { field: 'pin', message: t(l, 'pinFormat') }
          : { field: 'password', message: t(l, 'loginFailed') },
    });
  }

  /** After a correct password: the second factor, a clear refusal (level too low), or the finished login. */
  async function nextStep(
    ctx: Context,
    details: Details,
    a: LoginAttempt,
    {
      accountId,
      level,
      resetNotice: notice,
    }: { accountId: string; level: number; resetNotice: PendingResetNotice | null },
  ) {
    const need = await requirement(details);
    if (Math.max(need.required, need.voluntary) >= 2 && level >= 2) {
      proof.set(ctx, details.uid, accountId);
      ctx.body = await secondFactorStep(ctx, details, accountId, need);
      return;
    }
    if (need.required >= 2) {
      await recordEvent(db, {
        actor: { type: 'citizen', id: accountId },
        action: 'login',
        outcome: 'failure',
        reason: 'level_too_low',
        subject: accountId,
        ...a.who,
      });
      metrics?.login('unmet_level', level, a.who.clientId);
      ctx.body = unmetPage({ ...(await base(ctx, details)), phishing: need.required >= PHISHING_RESISTANT });
      return;
    }
    await finishLogin(ctx, details, accountId, 1, ['pwd'], 'login', notice);
  }

  router.post('/:uid/login', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx, 'login');
    const attempt = parseLogin(ctx, details);
    await limit(attempt);
    const result = await verify(attempt);
    if (!result.ok) return refuse(ctx, details, attempt, result.reason);
    await loginLimiter.succeed(attempt.limited);
    devices.issue(ctx, attempt.key);
    await nextStep(ctx, details, attempt, result);
  });

  router.post('/:uid/otp', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx, 'login');
    const proven = proof.get(ctx, details.uid);
    const accountId = proven ?? stepUpAccount(details);
    if (!accountId) throw new AppError('invalid_input', 'sign in with your password first');
    // A code never reaches the phishing-resistant level: only a passkey answers a portal that requires it.
    if ((await requirement(details)).required >= PHISHING_RESISTANT)
      throw new AppError('invalid_input', 'this portal needs a passkey');
    // Counted by the answer: 401 a wrong code, 429 (the code that locks, and any code while locked) code_locked.
    const count = (outcome: 'wrong_code' | 'code_locked') =>
      proven ? metrics?.login(outcome, 2, String(details.params.client_id)) : metrics?.stepUp(outcome);
    const blocked = await codeLimiter.reserve(accountId, ctx.ip);
    if (blocked) {
      count('code_locked');
      throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: blocked });
    }
    const method = await verifySecondFactor(db, master, accountId, str(form(ctx).code).slice(0, 30)).catch(
      async (err) => {
        await codeLimiter.release(accountId);
        throw err;
      },
    );
    if (!method) {
      const { lockedFor } = await codeLimiter.fail(accountId, ctx.ip);
      await recordEvent(db, {
        actor: { type: 'citizen', id: accountId },
        action: 'login.second_factor',
        outcome: 'failure',
        reason: 'wrong_code',
        subject: accountId,
        clientId: String(details.params.client_id),
        ip: ctx.ip,
      });
      count(lockedFor ? 'code_locked' : 'wrong_code');
      if (lockedFor) throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: lockedFor });
      ctx.status = 401;
      ctx.body = otpPage({
        ...(await base(ctx, details)),
        passkey: await hasLevel2Passkey(accountId),
        error: { field: 'code', message: t(lang(ctx, details), 'otpFailed') },
      });
      return;
    }
    await codeLimiter.succeed(accountId);
    proof.clear(ctx, details.uid);
    const amr = method === 'otp' ? ['pwd', 'otp', 'mfa'] : ['pwd', 'mfa'];
    await finishLogin(ctx, details, accountId, 2, amr, proven ? 'login' : 'step_up');
  });

  // Passkeys: options bound to this interaction (in PostgreSQL: any node checks the answer), then the answer.
  // Usernameless on the login page; on the second-factor page (a password proven in this interaction, or a step-up)
  // only the account's own passkeys. Failures count on their own limiter, never toward the password lockout.
  const passkeyBinding = (uid: string) => `login:${uid}`;
  const passkeyAccount = (ctx: Context, details: Details) => proof.get(ctx, details.uid) ?? stepUpAccount(details);
  const parseAnswer = bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' });

  router.post('/:uid/passkey/options', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx, 'login');
    const rp = relyingParty(host.current.issuer);
    // A step-up to the phishing-resistant level offers only the passkeys that reach it.
    const only = (await requirement(details)).required >= PHISHING_RESISTANT ? phishingResistantPasskey : undefined;
    const account = passkeyAccount(ctx, details) ?? null;
    ctx.body = await authenticationOptions(db, rp, passkeyBinding(details.uid), account, only);
  });

  router.post('/:uid/passkey', remember, parseAnswer, csrf, async (ctx) => {
    const details = await load(ctx, 'login');
    const expected = passkeyAccount(ctx, details);
    const passwordProven = !!proof.get(ctx, details.uid);
    let response: unknown = null;
    try {
      response = JSON.parse(str(form(ctx).response));
    } catch {}
    const key = credentialIdOf(response) || 'none';
    const who = { clientId: String(details.params.client_id), ip: ctx.ip, userAgent: ctx.get('user-agent') };
    const blocked = await passkeyLimiter.reserve(key, ctx.ip);
    if (blocked) {
      await recordEvent(db, {
        actor: { type: 'citizen' },
        action: 'login.passkey',
        outcome: 'failure',
        reason: 'locked',
        details: { credential: key },
        ...who,
      });
      throw new AppError('rate_limited', 'too many failed passkey attempts', { retryAfter: blocked });
    }
    const rp = relyingParty(host.current.issuer);
    const result = await verifyPasskeyAssertion(db, rp, passkeyBinding(details.uid), response).catch(async (err) => {
      await passkeyLimiter.release(key);
      throw err;
    });
    const profile = result.ok ? await findAccountProfile(db, result.login.accountId) : undefined;
    if (!result.ok || profile?.status !== 'active' || profile.resident.status !== 'active') {
      await passkeyLimiter.fail(key, ctx.ip);
      const reason = result.ok ? 'account_inactive' : result.reason;
      const accountId = result.ok ? result.login.accountId : result.accountId;
      const failure = { subject: accountId, details: { credential: key }, ...who };
      await recordEvent(db, {
        actor: { type: 'citizen', id: accountId },
        action: 'login.passkey',
        outcome: 'failure',
        reason,
        ...failure,
      });
      if (reason === 'sign_count')
        await recordEvent(db, {
          actor: { type: 'system' },
          action: 'passkey.clone_suspected',
          outcome: 'success',
          ...failure,
        });
      ctx.status = 401;
      const page = await base(ctx, details);
      const error = { message: t(lang(ctx, details), 'passkeyFailed') };
      ctx.body = expected
        ? await secondFactorStep(ctx, details, expected, await requirement(details), error)
        : loginPage({ ...page, error });
      return;
    }
    await passkeyLimiter.succeed(key);
    const { login } = result;
    const assurance = passkeyAssurance({ ...login, accountLevel: profile.level, deviceBoundOnly: acr.deviceBoundOnly });
    const { amr } = assurance;
    const level = assurance.phishingResistant ? PHISHING_RESISTANT : assurance.level;
    const need = await requirement(details);
    if (need.required > level) {
      await recordEvent(db, {
        actor: { type: 'citizen', id: login.accountId },
        action: 'login',
        outcome: 'failure',
        reason: 'level_too_low',
        subject: login.accountId,
        details: { amr },
        ...who,
      });
      ctx.body = unmetPage({ ...(await base(ctx, details)), phishing: need.required >= PHISHING_RESISTANT });
      return;
    }
    proof.clear(ctx, details.uid);
    await finishLogin(ctx, details, login.accountId, level, amr, expected && !passwordProven ? 'step_up' : 'login');
  });

  router.post('/:uid/unmet', remember, parseForm, csrf, async (ctx) => {
    await load(ctx, 'login');
    await host.current.interactionFinished(
      ctx.req,
      ctx.res,
      {
        error: 'unmet_authentication_requirements',
        error_description: 'the account does not reach the required level',
      },
      { mergeWithLastSubmission: false },
    );
  });

  router.post('/:uid/consent', remember, parseForm, csrf, async (ctx) => {
    const details = await load(ctx, 'consent');
    const { prompt, params, session } = details;
    if (!session) throw new errors.SessionNotFound('no session');
    const grant = details.grantId
      ? await host.current.Grant.find(details.grantId)
      : new host.current.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
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
    await finish(ctx, details, { consent: { grantId } }, true);
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
    await host.current.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'the citizen declined' },
      { mergeWithLastSubmission: false },
    );
  });

  return router;
}
