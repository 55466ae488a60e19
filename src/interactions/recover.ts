/**
 * /recover ("Quên mật khẩu?"): the card details, then the SMS code to the registered phone, then a new password
 * (and, for a level-2 account, its second factor). /recover/officer: the personal ID and an officer's reset code
 * instead of the first two steps. A completed reset ends every session and revokes every token of the account
 * (portals told by back-channel logout), is audited, and the citizen is told by SMS and at the next sign-in.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import {
  type CodeBook,
  completeReset,
  type PendingReset,
  pendingReset,
  redeemOfficerResetCode,
  registeredPhone,
  resetPasswordProblem,
  SMS_TEXT,
  startRecovery,
  verifyRecoveryCode,
  verifySecondFactor,
} from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import { endOtherSessions, type ProviderRef } from '../oidc/index.ts';
import type { SmsSender } from '../sms/index.ts';
import { html, type Lang, langLink, page, t, vnDateTime } from '../ui/index.ts';
import { formNonce } from './csrf.ts';
import { cardFields, cardKey, codePage, guardedCode, handleRef, inputMessage } from './enroll.ts';
import { errorBlock, type FormError, formKit, hidden, input } from './forms.ts';

/** What the recovery pages need. */
export interface RecoverDeps {
  host: ProviderRef;
  db: Kysely<DB>;
  hasher: PasswordHasher;
  master: Buffer;
  csrfSecret: string;
  /** Wrong card details and officer codes, per personal ID (pseudonym) and IP. */
  limiter: Limiter;
  /** Wrong second-factor codes, per account (the login's limiter). */
  codeLimiter: Limiter;
  /** Wrong SMS and officer codes, per code and, across codes, per IP. */
  smsCodeLimiter: Limiter;
  pseudonym: (pin: string) => string;
  codes: CodeBook;
  sms: SmsSender;
}

function startPage(lang: Lang, csrf: string, values: Record<string, string>, error?: FormError): string {
  return page(
    lang,
    t(lang, 'recoverTitle'),
    html`<p>${t(lang, 'recoverLead')}</p>
${errorBlock(error)}
<form method="post" action="/recover">
${hidden(csrf, lang)}
${cardFields(lang, values, error)}
<button type="submit">${t(lang, 'recoverSend')}</button>
</form>
<p class="muted">${t(lang, 'recoverInPerson')}</p>
<p><a href="/recover/officer?lang=${lang}">${t(lang, 'recoverOfficerLink')}</a></p>`,
    langLink(lang, '/recover'),
  );
}

function officerPage(lang: Lang, csrf: string, pin: string, error?: FormError): string {
  return page(
    lang,
    t(lang, 'recoverOfficerTitle'),
    html`<p>${t(lang, 'recoverOfficerLead')}</p>
${errorBlock(error)}
<form method="post" action="/recover/officer" autocomplete="off">
${hidden(csrf, lang)}
${input('pin', t(lang, 'pin'), pin, 'text', html`inputmode="numeric" maxlength="20" required autocomplete="username"`)}
${input('code', t(lang, 'resetCodeLabel'), '', 'text', html`maxlength="30" required autocapitalize="characters"`, error)}
<button type="submit">${t(lang, 'confirm')}</button>
</form>`,
    langLink(lang, '/recover/officer'),
  );
}

function passwordPage(lang: Lang, csrf: string, p: PendingReset, error?: FormError): string {
  return page(
    lang,
    t(lang, 'recoverTitle'),
    html`<p>${t(lang, 'recoverPasswordLead')}</p>
${errorBlock(error)}
<form method="post" action="/recover/password">
${hidden(csrf, lang, { handle: p.handle })}
${input('password', t(lang, 'newPassword'), '', 'password', html`minlength="8" maxlength="128" required autocomplete="new-password"`, error)}
${
  p.needsSecondFactor
    ? input(
        'second',
        t(lang, 'recoverSecondFactor'),
        '',
        'text',
        html`maxlength="30" required autocomplete="one-time-code"`,
        error,
      )
    : ''
}
<button type="submit">${t(lang, 'confirm')}</button>
</form>`,
  );
}

const expiredPage = (lang: Lang) =>
  page(
    lang,
    t(lang, 'recoverTitle'),
    html`<p class="error" role="alert">${t(lang, 'recoverExpired')}</p><p><a href="/recover?lang=${lang}">${t(
      lang,
      'recoverTitle',
    )}</a></p>`,
  );

/** Routes for /recover. */
export function recoverRoutes(deps: RecoverDeps): Router {
  const { host, db, hasher, master, csrfSecret, limiter, codeLimiter, smsCodeLimiter, pseudonym, codes, sms } = deps;
  const router = new Router({ prefix: '/recover' });
  const { parseForm, csrf, lang, field, token } = formKit(csrfSecret);
  const audit = (
    ctx: Context,
    action: string,
    outcome: 'success' | 'failure',
    reason: string | null,
    subject: string,
    details?: Record<string, unknown>,
  ) =>
    recordEvent(db, {
      actor: { type: 'citizen', id: outcome === 'success' && /^[0-9a-f-]{36}$/.test(subject) ? subject : null },
      action,
      outcome,
      reason,
      subject,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details,
    });
  const noStore = async (ctx: Context, next: () => Promise<unknown>) => {
    ctx.set('cache-control', 'no-store');
    await next();
  };

  router.get('/', noStore, (ctx) => {
    ctx.body = startPage(lang(ctx), token(ctx), {});
  });

  router.post('/', noStore, parseForm, csrf, async (ctx) => {
    const l = lang(ctx);
    const values = {
      pin: field(ctx, 'pin', 20),
      fullName: field(ctx, 'fullName'),
      birthDate: field(ctx, 'birthDate', 10),
    };
    const id = pseudonym(values.pin.replace(/[\s.-]/g, ''));
    const key = cardKey(id, ctx);
    const blocked = await limiter.reserve(key, ctx.ip);
    if (blocked) throw new AppError('rate_limited', 'too many attempts', { retryAfter: blocked });
    const r = await startRecovery(db, codes, sms, values, ctx.ip, formNonce(ctx)).catch(async (err) => {
      await limiter.release(key);
      throw err;
    });
    if (r.outcome === 'invalid_input') {
      await limiter.release(key);
      ctx.status = 400;
      ctx.body = startPage(l, token(ctx), values, inputMessage(l, r));
      return;
    }
    // As at enrollment: only details matching a resident with a phone are not a guess.
    if (r.phone) await limiter.succeed(key);
    else await limiter.fail(key, ctx.ip);
    const sent = r.outcome === 'code_sent';
    await audit(
      ctx,
      'password.reset_requested',
      sent ? 'success' : 'failure',
      sent ? null : r.outcome,
      r.accountId ?? id,
    );
    ctx.body = codePage(l, {
      title: 'recoverTitle',
      action: '/recover/code',
      again: '/recover',
      csrf: token(ctx),
      handle: r.handle,
      phone: r.phone,
    });
  });

  router.post('/code', noStore, parseForm, csrf, async (ctx) => {
    const l = lang(ctx);
    const handle = field(ctx, 'handle', 64);
    const pending = await guardedCode(
      smsCodeLimiter,
      ctx,
      handle,
      () => verifyRecoveryCode(db, codes, handle, field(ctx, 'code', 20), formNonce(ctx)),
      (x) => x !== null,
    );
    if (!pending) {
      await audit(ctx, 'password.reset_code', 'failure', 'wrong_code', handleRef(handle));
      const shown = field(ctx, 'phone', 4);
      ctx.status = 400;
      ctx.body = codePage(
        l,
        {
          title: 'recoverTitle',
          action: '/recover/code',
          again: '/recover',
          csrf: token(ctx),
          handle,
          phone: /^\.\.\d{2}$/.test(shown) ? shown : null,
        },
        { field: 'code', message: t(l, 'codeWrong') },
      );
      return;
    }
    await audit(ctx, 'password.reset_code', 'success', null, pending.accountId);
    ctx.body = passwordPage(l, token(ctx), pending);
  });

  router.get('/officer', noStore, (ctx) => {
    ctx.body = officerPage(lang(ctx), token(ctx), '');
  });

  router.post('/officer', noStore, parseForm, csrf, async (ctx) => {
    const l = lang(ctx);
    const pin = field(ctx, 'pin', 20).replace(/[\s.-]/g, '');
    const id = pseudonym(pin);
    const key = cardKey(id, ctx); // a stranger's guesses never lock the citizen's own code out
    const blocked = await limiter.reserve(key, ctx.ip);
    if (blocked) throw new AppError('rate_limited', 'too many attempts', { retryAfter: blocked });
    const code = field(ctx, 'code', 40);
    const pending = await redeemOfficerResetCode(db, codes, pin, code, formNonce(ctx)).catch(async (err) => {
      await limiter.release(key);
      throw err;
    });
    if (!pending) {
      await limiter.fail(key, ctx.ip);
      await audit(ctx, 'password.reset_code', 'failure', 'wrong_officer_code', id);
      ctx.status = 400;
      ctx.body = officerPage(l, token(ctx), pin.slice(0, 12), { field: 'code', message: t(l, 'codeWrong') });
      return;
    }
    await limiter.succeed(key);
    await audit(ctx, 'password.reset_code', 'success', null, pending.accountId, { via: 'officer' });
    ctx.body = passwordPage(l, token(ctx), pending);
  });

  router.post('/password', noStore, parseForm, csrf, async (ctx) => {
    const l = lang(ctx);
    const pending = await pendingReset(db, codes, field(ctx, 'handle', 64), formNonce(ctx));
    if (!pending) {
      ctx.status = 400;
      ctx.body = expiredPage(l);
      return;
    }
    const password = field(ctx, 'password', 1024);
    const problem = resetPasswordProblem(pending, password);
    if (problem) {
      ctx.status = 400;
      ctx.body = passwordPage(l, token(ctx), pending, { field: 'password', message: t(l, `pw_${problem}`) });
      return;
    }
    const { accountId } = pending;
    let amr = 'sms';
    if (pending.needsSecondFactor) {
      // The phone alone does not reset a level-2 account: its second factor too, limited like at sign-in.
      const blocked = await codeLimiter.reserve(accountId, ctx.ip);
      if (blocked) throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: blocked });
      const method = await verifySecondFactor(db, master, accountId, field(ctx, 'second', 30)).catch(async (err) => {
        await codeLimiter.release(accountId);
        throw err;
      });
      if (!method) {
        const { lockedFor } = await codeLimiter.fail(accountId, ctx.ip);
        await audit(ctx, 'password.reset', 'failure', 'wrong_second_factor', accountId);
        if (lockedFor) throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: lockedFor });
        ctx.status = 401;
        ctx.body = passwordPage(l, token(ctx), pending, { field: 'second', message: t(l, 'recoverSecondWrong') });
        return;
      }
      await codeLimiter.succeed(accountId);
      amr = `sms+${method}`;
    }
    if (!(await completeReset(db, hasher, codes, pending, password, ctx.ip))) {
      ctx.status = 400;
      ctx.body = expiredPage(l);
      return;
    }
    const ended = await endOtherSessions(host.current, db, accountId, undefined);
    await audit(ctx, 'password.reset', 'success', null, accountId, {
      via: pending.via === 'officer' ? 'officer' : amr,
      sessionsEnded: ended.sessions,
      tokensRevoked: ended.tokens,
    });
    const phone = await registeredPhone(db, accountId);
    if (phone) {
      await sms
        .send({ to: phone, text: SMS_TEXT.resetDone(vnDateTime(new Date(), 'vi')), purpose: 'notice' })
        .catch(() => {}); // the reset is done; a notice that could not go out is not a reason to fail it
    }
    ctx.body = page(
      l,
      t(l, 'recoverTitle'),
      html`<p>${t(l, 'recoverDone')}</p><p><a href="/account?lang=${l}">${t(l, 'accountTitle')}</a></p>`,
    );
  });

  return router;
}
