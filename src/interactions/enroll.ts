/**
 * /enroll: level 1 self-enrollment in two steps. The card details and a password; then the code sent by SMS to the
 * phone registered to the resident. One answer whatever the registry says (no enumeration); password problems,
 * which do not depend on the registry, are shown precisely. Limited per personal ID and per IP like logins; codes
 * are limited per phone and per try (accounts/possession.ts).
 */

import { createHash } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import { type CodeBook, finishEnrollment, startEnrollment } from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { maskPhone, type SmsSender } from '../sms/index.ts';
import { type Html, html, type Lang, langLink, type MessageKey, page, t } from '../ui/index.ts';
import { formNonce } from './csrf.ts';
import { errorBlock, type FormError, formKit, hidden, input } from './forms.ts';

/** What the enrollment page needs. */
export interface EnrollDeps {
  db: Kysely<DB>;
  hasher: PasswordHasher;
  csrfSecret: string;
  limiter: Limiter;
  pseudonym: (pin: string) => string;
  codes: CodeBook;
  sms: SmsSender;
  /** Wrong SMS codes, per code and, across codes, per IP. */
  smsCodeLimiter: Limiter;
  /** Enrollment counters (absent: not counted). */
  metrics?: Metrics;
}

/**
 * The limiter key of a card-details form: the personal ID's pseudonym from this IP. Wrong details from elsewhere (a
 * stranger who knows the 12-digit number) never lock the citizen out; the limiter's per-IP count of distinct keys
 * stops one client trying many numbers. The details are printed on the card anyway: the SMS code is the proof.
 */
export const cardKey = (pseudonym: string, ctx: Context) => `${pseudonym}@${ctx.ip}`;

/** A code's handle as it may appear in logs and limits (never the handle itself). */
export const handleRef = (handle: string) =>
  `code:${createHash('sha256').update(handle).digest('base64url').slice(0, 22)}`;

/**
 * Checks a one-time code under the code limiter: per handle, and per IP across handles (one client guessing codes
 * for many citizens is blocked). `ok` says whether the outcome was a right code.
 */
export async function guardedCode<T>(
  limiter: Limiter,
  ctx: Context,
  handle: string,
  attempt: () => Promise<T>,
  ok: (r: T) => boolean,
): Promise<T> {
  const key = handleRef(handle);
  const blocked = await limiter.reserve(key, ctx.ip);
  if (blocked) throw new AppError('rate_limited', 'too many wrong codes', { retryAfter: blocked });
  const r = await attempt().catch(async (err) => {
    await limiter.release(key);
    throw err;
  });
  if (ok(r)) await limiter.succeed(key);
  else await limiter.fail(key, ctx.ip);
  return r;
}

/**
 * "Enter the code": the same page whether or not a code went out. `phone` (the registered number) is shown as its
 * last two digits only when the details matched a resident with a phone.
 */
export function codePage(
  lang: Lang,
  o: {
    title: MessageKey;
    action: string;
    again: string;
    csrf: string;
    handle: string;
    phone: string | null;
    /** The login page to return to afterwards (enrollment started from a portal's login). */
    back?: string;
  },
  error?: FormError,
): string {
  const lead = o.phone
    ? html`${t(lang, 'codeSentTo')} <strong>${maskPhone(o.phone)}</strong>.`
    : t(lang, 'codeSentMaybe');
  return page(
    lang,
    t(lang, o.title),
    html`<p>${lead}</p>
${errorBlock(error)}
<form method="post" action="${o.action}" autocomplete="off">
${hidden(o.csrf, lang, { handle: o.handle, phone: o.phone ? maskPhone(o.phone) : '', back: o.back ?? '' })}
${input('code', t(lang, 'codeLabel'), '', 'text', html`inputmode="numeric" autocomplete="one-time-code" maxlength="10" required`, error)}
<button type="submit">${t(lang, 'confirm')}</button>
</form>
<p class="muted">${t(lang, 'codeHelp')}</p>
<p><a href="${o.again}?lang=${lang}">${t(lang, 'codeAgain')}</a></p>`,
  );
}

/** The details printed on the ID card (enrollment and recovery ask for the same three). */
export const cardFields = (lang: Lang, values: Record<string, string>, error?: FormError): Html =>
  html`${input('pin', t(lang, 'pin'), values.pin ?? '', 'text', html`inputmode="numeric" maxlength="20" required autocomplete="username"`, error, 'pin-help')}
<p class="muted" id="pin-help">${t(lang, 'pinHelp')}</p>
${input('fullName', t(lang, 'fullName'), values.fullName ?? '', 'text', html`maxlength="200" required autocomplete="name"`, error)}
${input('birthDate', t(lang, 'birthDate'), values.birthDate ?? '', 'text', html`placeholder="31/12/1990" maxlength="10" required autocomplete="bday"`, error)}`;

/** Where to go back after enrolling: the login page that sent the citizen here, if that is what `back` names. */
export const backTo = (back: string) => (/^\/interaction\/[\w-]{1,64}$/.test(back) ? back : '');

function enrollPage(lang: Lang, csrf: string, values: Record<string, string>, error?: FormError): string {
  return page(
    lang,
    t(lang, 'enrollTitle'),
    html`<p>${t(lang, 'enrollLead')}</p>
${errorBlock(error)}
<form method="post" action="/enroll">
${hidden(csrf, lang, { back: backTo(values.back ?? '') })}
${cardFields(lang, values, error)}
${input('password', t(lang, 'newPassword'), '', 'password', html`minlength="8" maxlength="128" required autocomplete="new-password"`, error)}
<button type="submit">${t(lang, 'submitEnroll')}</button>
</form>`,
    langLink(lang, '/enroll'),
  );
}

/** The error for an input problem of the card-details form, tied to its field. */
export function inputMessage(
  lang: Lang,
  r: { outcome: 'password'; problem: string } | { outcome: 'invalid_input'; field: 'pin' | 'birthDate' | 'fullName' },
): FormError {
  if (r.outcome === 'password') return { field: 'password', message: t(lang, `pw_${r.problem}` as MessageKey) };
  const key = ({ pin: 'invalidPin', birthDate: 'invalidBirthDate', fullName: 'invalidFullName' } as const)[r.field];
  return { field: r.field, message: t(lang, key) };
}

/** Routes for /enroll. */
export function enrollRoutes(deps: EnrollDeps): Router {
  const { db, hasher, csrfSecret, limiter, pseudonym, codes, sms, smsCodeLimiter, metrics } = deps;
  const router = new Router();
  const { parseForm, csrf, lang, field, token } = formKit(csrfSecret);
  const audit = (
    ctx: Context,
    action: 'enrollment' | 'enrollment.code_requested',
    outcome: 'success' | 'failure',
    reason: string | null,
    subject: string,
    id?: string,
  ) => {
    if (action === 'enrollment') metrics?.enrollment(1, outcome === 'success' ? 'success' : (reason ?? 'failure'));
    return recordEvent(db, {
      actor: { type: 'citizen', id: id ?? null },
      action,
      outcome,
      reason,
      subject,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { level: 1, channel: 'web' },
    });
  };

  router.get('/enroll', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = enrollPage(lang(ctx), token(ctx), { back: backTo(String(ctx.query.back ?? '')) });
  });

  router.post('/enroll', parseForm, csrf, async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const l = lang(ctx);
    const values = {
      pin: field(ctx, 'pin', 20),
      fullName: field(ctx, 'fullName'),
      birthDate: field(ctx, 'birthDate', 10),
      back: backTo(field(ctx, 'back', 80)),
    };
    const id = pseudonym(values.pin.replace(/[\s.-]/g, ''));
    const key = cardKey(id, ctx);
    const blocked = await limiter.reserve(key, ctx.ip);
    if (blocked) throw new AppError('rate_limited', 'too many enrollment attempts', { retryAfter: blocked });
    const r = await startEnrollment(
      db,
      hasher,
      codes,
      sms,
      { ...values, password: field(ctx, 'password', 1024) },
      ctx.ip,
      formNonce(ctx),
    ).catch(async (err) => {
      await limiter.release(key);
      throw err;
    });
    if (r.outcome === 'invalid_input' || r.outcome === 'password') {
      await limiter.release(key); // not a guess: nothing counted (and nothing cleared)
      ctx.status = 400;
      ctx.body = enrollPage(l, token(ctx), values, inputMessage(l, r));
      return;
    }
    // The details matched a resident with a phone (whatever happened next): not a guess. Anything else counts like a
    // wrong password, a resident without a phone included (so the limiter does not tell that one apart either).
    if (r.phone) await limiter.succeed(key);
    else await limiter.fail(key, ctx.ip);
    await audit(
      ctx,
      'enrollment.code_requested',
      r.outcome === 'code_sent' ? 'success' : 'failure',
      r.outcome === 'code_sent' ? null : r.outcome,
      r.residentId ?? id,
    );
    ctx.body = codePage(l, {
      title: 'enrollTitle',
      action: '/enroll/code',
      again: '/enroll',
      csrf: token(ctx),
      handle: r.handle,
      phone: r.phone,
      back: values.back,
    });
  });

  router.post('/enroll/code', parseForm, csrf, async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const l = lang(ctx);
    const handle = field(ctx, 'handle', 64);
    const back = backTo(field(ctx, 'back', 80));
    const r = await guardedCode(
      smsCodeLimiter,
      ctx,
      handle,
      () => finishEnrollment(db, codes, handle, field(ctx, 'code', 20), formNonce(ctx)),
      (x) => x.outcome !== 'wrong_code',
    );
    if (r.outcome !== 'created') {
      await audit(ctx, 'enrollment', 'failure', r.outcome, handleRef(handle));
      ctx.status = 400;
      // The page as it was (the masked digits come back from the form: nothing looked up for a wrong code).
      const shown = field(ctx, 'phone', 4);
      ctx.body = codePage(
        l,
        {
          title: 'enrollTitle',
          action: '/enroll/code',
          again: '/enroll',
          csrf: token(ctx),
          handle,
          phone: /^\.\.\d{2}$/.test(shown) ? shown : null,
          back,
        },
        { field: 'code', message: t(l, 'codeWrong') },
      );
      return;
    }
    await audit(ctx, 'enrollment', 'success', null, r.accountId, r.accountId);
    ctx.body = page(
      l,
      t(l, 'enrollTitle'),
      back
        ? html`<p>${t(l, 'enrollDoneNow')}</p><p><a class="button" href="${back}">${t(l, 'enrollBack')}</a></p>`
        : html`<p>${t(l, 'enrollDoneNow')}</p><p><a href="/account">${t(l, 'accountTitle')}</a></p>`,
    );
  });

  return router;
}
