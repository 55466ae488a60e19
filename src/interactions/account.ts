import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';

import QRCode from 'qrcode';
import {
  type AccountProfile,
  changePassword,
  confirmTotp,
  type EnrollmentAuthority,
  FRESH_LEVEL2_MS,
  findAccountProfile,
  listPasskeys,
  mayEnrollSecondFactor,
  pendingTotpSecret,
  redeemActivationCode,
  registerPasskey,
  registrationOptions,
  relyingParty,
  removePasskey,
  renamePasskey,
  secondFactorState,
  startTotpEnrollment,
} from '../accounts/index.ts';
import { recordEvent, subjectHistory } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import { type PasswordHasher, totpUri } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import type { Metrics } from '../metrics/index.ts';
import {
  ACCOUNT_CLIENT_ID,
  endOtherSessions,
  endSession,
  listAccountGrants,
  listAccountSessions,
  type ProviderRef,
  revokeAccountGrant,
} from '../oidc/index.ts';
import { html, type Lang, page, pickLang, t } from '../ui/index.ts';
import { type AccountView, accountPage, mask, removePasskeyPage } from './account-page.ts';
import { byNonce, csrfToken, formNonce, requireCsrf } from './csrf.ts';
import { firstPartySignIn } from './first-party.ts';

/** What the account routes need. */
export interface AccountDeps {
  /** The current provider (it is swapped when signing keys change). */
  host: ProviderRef;
  db: Kysely<DB>;
  issuer: string;
  pseudonym: (pin: string) => string;
  hasher: PasswordHasher;
  master: Buffer;
  csrfSecret: string;
  /** Limits wrong activation and TOTP codes per account. */
  codeLimiter: Limiter;
  /**
   * Wrong current passwords on the change form, per account: a counter of its own, so that someone holding a
   * signed-in session cannot lock the citizen's second factor (and with it their level-2 sign-in) by guessing.
   */
  passwordLimiter: Limiter;
  acr: Config['acr'];
  /** How long a redeemed in-person check may be used to enroll a second factor (IN_PERSON_VALID_HOURS). */
  inPersonValidMs: number;
  /** Level-2 enrollment counters (absent: not counted). */
  metrics?: Metrics;
}

const FLOW_COOKIE = 'account_flow';

/** Routes for /account. */
export function accountRoutes(deps: AccountDeps): Router {
  const {
    host,
    db,
    issuer,
    pseudonym,
    hasher,
    master,
    csrfSecret,
    codeLimiter,
    passwordLimiter,
    acr,
    inPersonValidMs,
    metrics,
  } = deps;
  const router = new Router({ prefix: '/account' });
  /** Whether an `acr` value is level 2 or more (the phishing-resistant value is level 2 proven with a passkey). */
  const atLevel2 = (value: unknown) => typeof value === 'string' && (acr.levels[value] ?? 0) >= 2;
  const lang = (ctx: Context): Lang =>
    pickLang(field(ctx, 'lang') || ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));
  const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '8kb', encoding: 'utf-8' });
  const csrf = requireCsrf(csrfSecret, byNonce);
  const field = (ctx: Context, k: string) => {
    const v = (ctx.request.body as Record<string, unknown> | undefined)?.[k];
    return typeof v === 'string' ? v : '';
  };

  /** The signed-in account, or a 401 (forms are only shown to signed-in citizens). */
  async function signedIn(ctx: Context): Promise<string> {
    const session = await host.current.Session.get(ctx as never);
    const profile = session.accountId ? await findAccountProfile(db, session.accountId) : undefined;
    if (profile?.status !== 'active') throw new AppError('credentials_rejected', 'sign in first');
    return profile.accountId;
  }

  /** Records what the signed-in citizen did to their own account. */
  const audit = (
    ctx: Context,
    accountId: string,
    action: string,
    outcome: 'success' | 'failure',
    reason?: string,
    details?: Record<string, unknown>,
  ) =>
    recordEvent(db, {
      actor: { type: 'citizen', id: accountId },
      action,
      outcome,
      reason,
      subject: accountId,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details,
    });

  /** Guards a code-checking form: locked accounts get 429; wrong codes count. */
  async function checkCode(
    ctx: Context,
    accountId: string,
    ok: boolean,
    action: string,
    limiter: Limiter = codeLimiter,
  ): Promise<boolean> {
    if (ok) {
      await limiter.succeed(accountId);
      await audit(ctx, accountId, action, 'success');
      return true;
    }
    const { lockedFor } = await limiter.fail(accountId, ctx.ip);
    await audit(ctx, accountId, action, 'failure', 'wrong_code');
    if (lockedFor) throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: lockedFor });
    return false;
  }

  /**
   * Who is asking to enroll or replace a second factor: this session, and whether it signed in with the current
   * one. The rule itself (current factor, or an unspent in-person check redeemed in this session) is the service's.
   */
  async function enrollmentAuthority(ctx: Context): Promise<EnrollmentAuthority> {
    const session = await host.current.Session.get(ctx as never);
    return { sessionUid: session.uid, level2Session: atLevel2(session.acr), validMs: inPersonValidMs };
  }

  /** Counts this attempt in advance (see limits): refuses at once when the account is locked. */
  async function notLocked(ctx: Context, accountId: string, limiter: Limiter = codeLimiter) {
    const blocked = await limiter.reserve(accountId, ctx.ip);
    if (blocked) throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: blocked });
  }

  const message = (ctx: Context, text: string, status = 200) => {
    const l = lang(ctx);
    ctx.status = status;
    ctx.set('cache-control', 'no-store');
    ctx.body = page(
      l,
      t(l, 'accountTitle'),
      html`<p>${text}</p><p><a href="/account">${t(l, 'backToAccount')}</a></p>`,
    );
  };
  const signIn = firstPartySignIn({ host, issuer, clientId: ACCOUNT_CLIENT_ID, path: '/account', cookie: FLOW_COOKIE });
  /** Not signed in: to the provider's login. `extra`: more parameters (a fresh sign-in at a given level). */
  const startSignIn = (ctx: Context, extra: Record<string, string> = {}) => signIn.start(ctx, extra);

  const portalName = async (clientId: string) => (await host.current.Client.find(clientId))?.clientName ?? clientId;

  /** Audited actions that are sign-in steps, and how the history names them. */
  const STEPS = { login: 'password', 'login.second_factor': 'second_factor', step_up: 'step_up' } as const;

  /** The last 20 sign-in steps on this account or its personal ID (failures have no account yet). */
  async function signInHistory(accountId: string, pin: string): Promise<AccountView['history']> {
    const events = [...(await subjectHistory(db, accountId, 20)), ...(await subjectHistory(db, pseudonym(pin), 20))]
      .filter((e) => Object.hasOwn(STEPS, e.action))
      .sort((a, b) => b.seq - a.seq)
      .slice(0, 20);
    const names = new Map<string, string>();
    for (const id of new Set(events.map((e) => e.clientId).filter((c): c is string => !!c)))
      names.set(id, await portalName(id));
    return events.map((e) => ({
      at: e.at,
      portal: names.get(e.clientId ?? '') ?? '',
      // A level-2 login's success is recorded once, after its second factor.
      step: atLevel2(e.details.acr) && e.action === 'login' ? 'second_factor' : STEPS[e.action as keyof typeof STEPS],
      success: e.outcome === 'success',
      level2: atLevel2(e.details.acr),
      ip: e.ip,
    }));
  }

  /** What the level-2 section offers: the active factor, its enrollment, or the way to an officer. */
  async function secondFactorView(ctx: Context, accountId: string): Promise<AccountView['secondFactor']> {
    const f2 = await secondFactorState(db, accountId);
    if (f2?.totp) return { state: 'active', recoveryCodesLeft: f2.recoveryCodesLeft };
    return (await mayEnrollSecondFactor(db, accountId, await enrollmentAuthority(ctx)))
      ? { state: 'may_enroll' }
      : { state: 'needs_visit' };
  }

  router.get('/', async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const session = await host.current.Session.get(ctx as never);
    const profile = session.accountId ? await findAccountProfile(db, session.accountId) : undefined;
    if (!profile) return startSignIn(ctx);
    const { accountId, resident } = profile;
    const grants = (await listAccountGrants(db, accountId)).filter((g) => g.clientId !== ACCOUNT_CLIENT_ID);
    ctx.body = accountPage({
      lang: lang(ctx),
      csrf: csrfToken(csrfSecret, formNonce(ctx)),
      resident,
      level: profile.level,
      history: await signInHistory(accountId, resident.pin),
      sessions: (await listAccountSessions(db, accountId)).map((x) => ({ ...x, current: x.uid === session.uid })),
      grants: await Promise.all(
        grants.map(async (g) => ({ grantId: g.grantId, portal: await portalName(g.clientId), scope: g.scope })),
      ),
      secondFactor: await secondFactorView(ctx, accountId),
      passkeys: {
        list: await listPasskeys(db, accountId),
        mayAdd: (await passkeyAuthority(ctx, profile)).mayRegister,
      },
      logoutUrl: `/session/end?client_id=${ACCOUNT_CLIENT_ID}`,
    });
  });

  // Passkeys. Registering needs a sign-in at most 10 minutes old; for a level-2 account it must be a level-2 one, and
  // the passkey then proves level 2 (a level-1 account's passkey proves level 1). Removing needs a level-2 session
  // on a level-2 account. At most MAX_PASSKEYS; every act audited.
  const rp = relyingParty(issuer);
  const registerBinding = (sessionUid: string) => `register:${sessionUid}`;
  const parseAnswer = bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' });

  /** What this session may do with passkeys, and the level a passkey it registers proves. */
  async function passkeyAuthority(ctx: Context, profile: AccountProfile) {
    const session = await host.current.Session.get(ctx as never);
    const fresh = !!session.loginTs && Date.now() - session.loginTs * 1000 <= FRESH_LEVEL2_MS;
    const level2 = atLevel2(session.acr);
    return {
      sessionUid: session.uid,
      level: (profile.level >= 2 ? 2 : 1) as 1 | 2,
      mayRegister: fresh && (profile.level < 2 || level2),
      mayRemove: profile.level < 2 || level2,
    };
  }

  /** The signed-in citizen's profile (active), or a 401. */
  async function signedInProfile(ctx: Context): Promise<AccountProfile> {
    return (await findAccountProfile(db, await signedIn(ctx)))!;
  }

  // A fresh sign-in, at level 2 for a level-2 account, before adding or removing a passkey.
  router.get('/confirm', async (ctx) => {
    const profile = await signedInProfile(ctx);
    startSignIn(ctx, { prompt: 'login', ...(profile.level >= 2 ? { acr_values: acr.level2 } : {}) });
  });

  router.post('/passkeys/options', parseForm, csrf, async (ctx) => {
    const profile = await signedInProfile(ctx);
    const who = await passkeyAuthority(ctx, profile);
    ctx.set('cache-control', 'no-store');
    if (!who.mayRegister) {
      await audit(ctx, profile.accountId, 'passkey.registered', 'failure', 'session_not_fresh');
      throw new AppError('credentials_rejected', 'confirm your sign-in again first');
    }
    try {
      ctx.body = await registrationOptions(db, rp, registerBinding(who.sessionUid), {
        accountId: profile.accountId,
        userName: mask(profile.resident.pin),
        displayName: profile.resident.fullName,
      });
    } catch (err) {
      if (err instanceof AppError && err.code === 'conflict')
        await audit(ctx, profile.accountId, 'passkey.registered', 'failure', 'too_many');
      throw err;
    }
  });

  router.post('/passkeys', parseAnswer, csrf, async (ctx) => {
    const profile = await signedInProfile(ctx);
    const who = await passkeyAuthority(ctx, profile);
    const l = lang(ctx);
    if (!who.mayRegister) {
      await audit(ctx, profile.accountId, 'passkey.registered', 'failure', 'session_not_fresh');
      return message(ctx, t(l, 'passkeyConfirmFirst'), 403);
    }
    let response: unknown = null;
    try {
      response = JSON.parse(field(ctx, 'response'));
    } catch {}
    const result = await registerPasskey(
      db,
      rp,
      registerBinding(who.sessionUid),
      profile.accountId,
      response,
      field(ctx, 'name') || t(l, 'passkeyDefaultName'),
      who.level,
    );
    if (!result.ok) {
      await audit(ctx, profile.accountId, 'passkey.registered', 'failure', result.reason);
      return message(ctx, t(l, result.reason === 'too_many' ? 'passkeyLimit' : 'passkeyAddFailed'), 400);
    }
    const { passkey } = result;
    await audit(ctx, profile.accountId, 'passkey.registered', 'success', undefined, {
      credential: passkey.id,
      level: passkey.level,
      synced: passkey.synced,
    });
    return message(ctx, t(l, 'passkeyAdded'));
  });

  router.post('/passkeys/rename', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    const id = field(ctx, 'passkey');
    if (!(await renamePasskey(db, accountId, id, field(ctx, 'name'))))
      throw new AppError('not_found', 'no such passkey');
    await audit(ctx, accountId, 'passkey.renamed', 'success', undefined, { credential: id.slice(0, 200) });
    return message(ctx, t(lang(ctx), 'passkeyRenamed'));
  });

  // Removal asks first (with a warning when the passkey is the account's last level-2 factor), then removes.
  router.post('/passkeys/remove', parseForm, csrf, async (ctx) => {
    const profile = await signedInProfile(ctx);
    const id = field(ctx, 'passkey');
    if (!(await passkeyAuthority(ctx, profile)).mayRemove) {
      await audit(ctx, profile.accountId, 'passkey.removed', 'failure', 'level_too_low', {
        credential: id.slice(0, 200),
      });
      return message(ctx, t(lang(ctx), 'passkeyConfirmFirst'), 403);
    }
    if (field(ctx, 'confirm') !== 'yes') {
      const list = await listPasskeys(db, profile.accountId);
      const target = list.find((p) => p.id === id);
      if (!target) throw new AppError('not_found', 'no such passkey');
      const f2 = await secondFactorState(db, profile.accountId);
      const last =
        profile.level >= 2 && target.level >= 2 && !f2?.totp && !list.some((p) => p.id !== id && p.level >= 2);
      ctx.set('cache-control', 'no-store');
      ctx.body = removePasskeyPage({
        lang: lang(ctx),
        csrf: csrfToken(csrfSecret, formNonce(ctx)),
        passkey: target,
        last,
      });
      return;
    }
    if (!(await removePasskey(db, profile.accountId, id))) throw new AppError('not_found', 'no such passkey');
    await audit(ctx, profile.accountId, 'passkey.removed', 'success', undefined, { credential: id.slice(0, 200) });
    return message(ctx, t(lang(ctx), 'passkeyRemoved'));
  });

  router.post('/activate', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    await notLocked(ctx, accountId);
    const who = await enrollmentAuthority(ctx);
    const ok = await redeemActivationCode(db, accountId, field(ctx, 'code').slice(0, 30), who.sessionUid);
    if (!ok) metrics?.enrollment(2, 'wrong_activation_code');
    if (!(await checkCode(ctx, accountId, ok, 'activation')))
      return message(ctx, t(lang(ctx), 'activationFailed'), 400);
    await startTotpEnrollment(db, master, accountId, who);
    ctx.redirect('/account/totp');
  });

  router.post('/totp/start', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    await startTotpEnrollment(db, master, accountId, await enrollmentAuthority(ctx));
    await audit(ctx, accountId, 'totp.enrollment_started', 'success');
    ctx.redirect('/account/totp');
  });

  /** The pending authenticator secret, only for the session entitled to enroll it (else none). */
  async function pendingSecretFor(ctx: Context, accountId: string): Promise<string | null> {
    if (!(await mayEnrollSecondFactor(db, accountId, await enrollmentAuthority(ctx)))) return null;
    return pendingTotpSecret(db, master, accountId);
  }

  router.get('/totp', async (ctx) => {
    const accountId = await signedIn(ctx);
    const secret = await pendingSecretFor(ctx, accountId);
    if (!secret) return ctx.redirect('/account');
    const l = lang(ctx);
    ctx.set('cache-control', 'no-store');
    ctx.body = page(
      l,
      t(l, 'totpTitle'),
      html`<p>${t(l, 'totpLead')}</p><p><img src="/account/totp/qr.svg" width="220" height="220" alt="${t(l, 'totpQrAlt')}"></p>
<p>${t(l, 'totpKey')}: <code>${secret.replace(/(.{4})/g, '$1 ').trim()}</code></p>
<form method="post" action="/account/totp"><input type="hidden" name="csrf" value="${csrfToken(csrfSecret, formNonce(ctx))}">
<input type="hidden" name="lang" value="${l}"><label for="code">${t(l, 'totpCode')}</label>
<input type="text" id="code" name="code" inputmode="numeric" maxlength="6" autocomplete="one-time-code" required>
<button type="submit">${t(l, 'confirm')}</button></form>`,
    );
  });

  router.get('/totp/qr.svg', async (ctx) => {
    const accountId = await signedIn(ctx);
    const secret = await pendingSecretFor(ctx, accountId);
    if (!secret) throw new AppError('not_found', 'no authenticator enrollment in progress');
    const profile = await findAccountProfile(db, accountId);
    ctx.set('cache-control', 'no-store');
    ctx.type = 'image/svg+xml';
    ctx.body = await QRCode.toString(totpUri(secret, mask(profile!.resident.pin), 'dinhdanh'), {
      type: 'svg',
      margin: 1,
    });
  });

  router.post('/totp', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    const who = await enrollmentAuthority(ctx);
    if (!(await mayEnrollSecondFactor(db, accountId, who)))
      throw new AppError('credentials_rejected', 'a second factor needs your current one or a fresh in-person check');
    await notLocked(ctx, accountId);
    const codes = await confirmTotp(db, master, accountId, field(ctx, 'code').slice(0, 10), who);
    // Level 2 reached (an in-person check spent), a factor replaced with the current one, or a wrong code.
    metrics?.enrollment(2, !codes ? 'wrong_code' : who.level2Session ? 'replaced' : 'success');
    if (!(await checkCode(ctx, accountId, !!codes, 'totp.enrolled')))
      return message(ctx, t(lang(ctx), 'totpFailed'), 400);
    const l = lang(ctx);
    ctx.set('cache-control', 'no-store');
    ctx.body = page(
      l,
      t(l, 'recoveryTitle'),
      html`<p>${t(l, 'recoveryLead')}</p><ul class="codes">${codes!.map((c) => html`<li><code>${c}</code></li>`)}</ul>
<p><a href="/account">${t(l, 'backToAccount')}</a></p>`,
    );
  });

  router.post('/sessions/end', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    const uid = field(ctx, 'session').slice(0, 100);
    const target = (await listAccountSessions(db, accountId)).find((x) => x.uid === uid);
    if (!target) throw new AppError('not_found', 'no such session');
    await endSession(host.current, db, target);
    await audit(ctx, accountId, 'session.ended', 'success', undefined, { clients: Object.keys(target.authorizations) });
    return message(ctx, t(lang(ctx), 'sessionEnded'));
  });

  router.post('/grants/revoke', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    const grantId = field(ctx, 'grant').slice(0, 100);
    if (!(await revokeAccountGrant(db, accountId, grantId))) throw new AppError('not_found', 'no such grant');
    await audit(ctx, accountId, 'consent.revoked', 'success', undefined, { grantId });
    return message(ctx, t(lang(ctx), 'grantRevoked'));
  });

  router.post('/password', parseForm, csrf, async (ctx) => {
    const accountId = await signedIn(ctx);
    await notLocked(ctx, accountId, passwordLimiter);
    const problem = await changePassword(db, hasher, accountId, field(ctx, 'current'), field(ctx, 'next')).catch(
      async (err) => {
        await passwordLimiter.release(accountId);
        throw err;
      },
    );
    const l = lang(ctx);
    if (problem === 'wrong_password') await checkCode(ctx, accountId, false, 'password.changed', passwordLimiter);
    else await passwordLimiter.succeed(accountId); // the current password was right: refund the reservation
    if (problem) {
      if (problem !== 'wrong_password') await audit(ctx, accountId, 'password.changed', 'failure', problem);
      return message(ctx, t(l, `pw_${problem}`), 400);
    }
    // Whoever else was signed in (a stolen session, a forgotten device) is out: every other session ends, with
    // back-channel logout, and every refresh token not of this session is revoked. On request, this one too.
    const everywhere = field(ctx, 'end_all') === 'yes';
    const current = (await host.current.Session.get(ctx as never)).uid;
    const ended = await endOtherSessions(host.current, db, accountId, everywhere ? undefined : current);
    await audit(ctx, accountId, 'password.changed', 'success', undefined, {
      sessionsEnded: ended.sessions,
      tokensRevoked: ended.tokens,
      thisDeviceToo: everywhere,
    });
    return message(ctx, t(l, everywhere ? 'passwordChangedAllEnded' : 'passwordChangedOthersEnded'));
  });

  /**
   * The end of the sign-in: /account is the provider's own page and reads its session directly, so it needs no
   * tokens; it still checks the code as a client would (its client, redirect URI, PKCE verifier, and that it names
   * the account now signed in) and redeems it in-process: the code is destroyed, never left to expire unused.
   */
  router.get('/callback', async (ctx) => {
    const r = await signIn.finish(ctx);
    if (r.refused) throw new AppError('invalid_input', 'sign-in was not completed');
    ctx.redirect('/account');
  });

  return router;
}
