/**
 * /enroll: level 1 self-enrollment in two steps. The card details and a password; then the code sent by SMS to the
 * phone registered to the resident. One answer whatever the registry says (no enumeration); password problems,
 * which do not depend on the registry, are shown precisely. Limited per personal ID and per IP like logins; codes
 * are limited per phone and per try (accounts/possession.ts).
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import { type CodeBook, finishEnrollment, startEnrollment } from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import { maskPhone, type SmsSender } from '../sms/index.ts';
import { h, type Lang, type MessageKey, page, pickLang, t } from '../ui/index.ts';
import { byNonce, csrfToken, formNonce, requireCsrf } from './csrf.ts';

/** What the enrollment page needs. */
export interface EnrollDeps {
  db: Kysely<DB>;
  hasher: PasswordHasher;
  csrfSecret: string;
  limiter: Limiter;
  pseudonym: (pin: string) => string;
  codes: CodeBook;
  sms: SmsSender;
}

/** Helpers shared by the /enroll and /recover pages (forms bound to the browser's nonce). */
export function formKit(csrfSecret: string) {
  const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '8kb', encoding: 'utf-8' });
  const body = (ctx: Context) => (ctx.request.body ?? {}) as Record<string, unknown>;
  return {
    parseForm,
    csrf: requireCsrf(csrfSecret, byNonce),
    lang: (ctx: Context): Lang =>
      pickLang(body(ctx).lang ?? ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language')),
    /** A form field as a string, clipped. */
    field: (ctx: Context, k: string, max = 200) => {
      const v = body(ctx)[k];
      return typeof v === 'string' ? v.slice(0, max) : '';
    },
    token: (ctx: Context) => csrfToken(csrfSecret, formNonce(ctx)),
  };
}

/** A labelled input; password inputs never echo a value. */
export function input(name: string, label: string, value: string, type = 'text', extra = ''): string {
  return `<label for="${name}">${h(label)}</label><input type="${type}" id="${name}" name="${name}" ${extra} value="${
    type === 'password' ? '' : h(value)
  }">`;
}

/** The hidden fields every form carries. */
export const hidden = (csrf: string, lang: Lang, more: Record<string, string> = {}) =>
  [['csrf', csrf], ['lang', lang], ...Object.entries(more)]
    .map(([k, v]) => `<input type="hidden" name="${h(k)}" value="${h(v)}">`)
    .join('');

/**
 * "Enter the code": the same page whether or not a code went out. `phone` (the registered number) is shown as its
 * last two digits only when the details matched a resident with a phone.
 */
export function codePage(
  lang: Lang,
  o: { title: MessageKey; action: string; again: string; csrf: string; handle: string; phone: string | null },
  error?: string,
): string {
  const lead = o.phone
    ? `${h(t(lang, 'codeSentTo'))} <strong>${h(maskPhone(o.phone))}</strong>.`
    : h(t(lang, 'codeSentMaybe'));
  return page(
    lang,
    t(lang, o.title),
    `<p>${lead}</p>
${error ? `<p class="error" role="alert">${h(error)}</p>` : ''}
<form method="post" action="${h(o.action)}" autocomplete="off">
${hidden(o.csrf, lang, { handle: o.handle, phone: o.phone ? maskPhone(o.phone) : '' })}
${input('code', t(lang, 'codeLabel'), '', 'text', 'inputmode="numeric" autocomplete="one-time-code" maxlength="10" required')}
<button type="submit">${h(t(lang, 'confirm'))}</button>
</form>
<p class="muted">${h(t(lang, 'codeHelp'))}</p>
<p><a href="${h(o.again)}?lang=${lang}">${h(t(lang, 'codeAgain'))}</a></p>`,
  );
}

function enrollPage(lang: Lang, csrf: string, values: Record<string, string>, error?: string): string {
  return page(
    lang,
    t(lang, 'enrollTitle'),
    `<p>${h(t(lang, 'enrollLead'))}</p>
${error ? `<p class="error" role="alert">${h(error)}</p>` : ''}
<form method="post" action="/enroll">
${hidden(csrf, lang)}
${input('pin', t(lang, 'pin'), values.pin ?? '', 'text', 'inputmode="numeric" maxlength="20" required autocomplete="username"')}
${input('fullName', t(lang, 'fullName'), values.fullName ?? '', 'text', 'maxlength="200" required autocomplete="name"')}
${input('birthDate', t(lang, 'birthDate'), values.birthDate ?? '', 'text', 'placeholder="31/12/1990" maxlength="10" required autocomplete="bday"')}
${input('password', t(lang, 'newPassword'), '', 'password', 'minlength="8" maxlength="128" required autocomplete="new-password"')}
<button type="submit">${h(t(lang, 'submitEnroll'))}</button>
</form>`,
    `/enroll?lang=${lang === 'vi' ? 'en' : 'vi'}`,
  );
}

/** The message for an input problem of the card-details form. */
export function inputMessage(
  lang: Lang,
  r: { outcome: 'password'; problem: string } | { outcome: 'invalid_input'; field: 'pin' | 'birthDate' | 'fullName' },
): string {
  if (r.outcome === 'password') return t(lang, `pw_${r.problem}` as MessageKey);
  return t(lang, ({ pin: 'invalidPin', birthDate: 'invalidBirthDate', fullName: 'invalidFullName' } as const)[r.field]);
}

/** Routes for /enroll. */
export function enrollRoutes({ db, hasher, csrfSecret, limiter, pseudonym, codes, sms }: EnrollDeps): Router {
  const router = new Router();
  const { parseForm, csrf, lang, field, token } = formKit(csrfSecret);
  const audit = (
    ctx: Context,
    action: 'enrollment' | 'enrollment.code_requested',
    outcome: 'success' | 'failure',
    reason: string | null,
    subject: string,
    id?: string,
  ) =>
    recordEvent(db, {
      actor: { type: 'citizen', id: id ?? null },
      action,
      outcome,
      reason,
      subject,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { level: 1, channel: 'web' },
    });

  router.get('/enroll', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = enrollPage(lang(ctx), token(ctx), {});
  });

  router.post('/enroll', parseForm, csrf, async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const l = lang(ctx);
    const values = {
      pin: field(ctx, 'pin', 20),
      fullName: field(ctx, 'fullName'),
      birthDate: field(ctx, 'birthDate', 10),
    };
    const key = pseudonym(values.pin.replace(/[\s.-]/g, ''));
    const blocked = await limiter.reserve(key, ctx.ip);
    if (blocked) throw new AppError('rate_limited', 'too many enrollment attempts', { retryAfter: blocked });
    const r = await startEnrollment(
      db,
      hasher,
      codes,
      sms,
      { ...values, password: field(ctx, 'password', 1024) },
      ctx.ip,
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
    // The details matched a resident (whatever happened next): not a guess. Otherwise it counts like a wrong password.
    if (r.phone || r.outcome === 'no_phone') await limiter.succeed(key);
    else await limiter.fail(key, ctx.ip);
    await audit(
      ctx,
      'enrollment.code_requested',
      r.outcome === 'code_sent' ? 'success' : 'failure',
      r.outcome === 'code_sent' ? null : r.outcome,
      r.residentId ?? key,
    );
    ctx.body = codePage(l, {
      title: 'enrollTitle',
      action: '/enroll/code',
      again: '/enroll',
      csrf: token(ctx),
      handle: r.handle,
      phone: r.phone,
    });
  });

  router.post('/enroll/code', parseForm, csrf, async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const l = lang(ctx);
    const handle = field(ctx, 'handle', 64);
    const r = await finishEnrollment(db, codes, handle, field(ctx, 'code', 20));
    if (r.outcome !== 'created') {
      await audit(ctx, 'enrollment', 'failure', r.outcome, handle);
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
        },
        t(l, 'codeWrong'),
      );
      return;
    }
    await audit(ctx, 'enrollment', 'success', null, r.accountId, r.accountId);
    ctx.body = page(
      l,
      t(l, 'enrollTitle'),
      `<p>${h(t(l, 'enrollDoneNow'))}</p><p><a href="/account">${h(t(l, 'accountTitle'))}</a></p>`,
    );
  });

  return router;
}
