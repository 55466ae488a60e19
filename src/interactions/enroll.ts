/**
 * /enroll: level 1 self-enrollment page. One answer whatever the registry says (no enumeration); password problems,
 * which do not depend on the registry, are shown precisely. Limited per personal ID and per IP like logins.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Kysely } from 'kysely';
import { enrollLevel1 } from '../accounts/index.ts';
import { recordEvent } from '../audit/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { Limiter } from '../limits/index.ts';
import { h, type Lang, page, pickLang, t } from '../ui/index.ts';
import { byNonce, csrfToken, formNonce, requireCsrf } from './csrf.ts';

/** What the enrollment page needs. */
export interface EnrollDeps {
  db: Kysely<DB>;
  hasher: PasswordHasher;
  csrfSecret: string;
  limiter: Limiter;
  pseudonym: (pin: string) => string;
}

function enrollPage(lang: Lang, csrf: string, values: Record<string, string>, error?: string): string {
  const field = (name: string, label: string, type = 'text', extra = '') =>
    `<label for="${name}">${h(label)}</label><input type="${type}" id="${name}" name="${name}" ${extra} value="${
      type === 'password' ? '' : h(values[name] ?? '')
    }">`;
  return page(
    lang,
    t(lang, 'enrollTitle'),
    `<p>${h(t(lang, 'enrollLead'))}</p>
${error ? `<p class="error" role="alert">${h(error)}</p>` : ''}
<form method="post" action="/enroll">
<input type="hidden" name="csrf" value="${h(csrf)}"><input type="hidden" name="lang" value="${lang}">
${field('pin', t(lang, 'pin'), 'text', 'inputmode="numeric" maxlength="20" required autocomplete="username"')}
${field('fullName', t(lang, 'fullName'), 'text', 'maxlength="200" required autocomplete="name"')}
${field('birthDate', t(lang, 'birthDate'), 'text', 'placeholder="31/12/1990" maxlength="10" required autocomplete="bday"')}
${field('password', t(lang, 'newPassword'), 'password', 'minlength="8" maxlength="128" required autocomplete="new-password"')}
<button type="submit">${h(t(lang, 'submitEnroll'))}</button>
</form>`,
    `/enroll?lang=${lang === 'vi' ? 'en' : 'vi'}`,
  );
}

/** Routes for /enroll. */
export function enrollRoutes({ db, hasher, csrfSecret, limiter, pseudonym }: EnrollDeps): Router {
  const router = new Router();
  const parseForm = bodyParser({ enableTypes: ['form'], formLimit: '8kb', encoding: 'utf-8' });
  const lang = (ctx: Context): Lang => {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    return pickLang(body.lang ?? ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));
  };

  router.get('/enroll', (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = enrollPage(lang(ctx), csrfToken(csrfSecret, formNonce(ctx)), {});
  });

  router.post('/enroll', parseForm, requireCsrf(csrfSecret, byNonce), async (ctx) => {
    ctx.set('cache-control', 'no-store');
    const l = lang(ctx);
    const body = ctx.request.body as Record<string, unknown>;
    const s = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    const values = {
      pin: s('pin').slice(0, 20),
      fullName: s('fullName').slice(0, 200),
      birthDate: s('birthDate').slice(0, 10),
    };
    const key = pseudonym(values.pin.replace(/[\s.-]/g, ''));
    const blocked = await limiter.reserve(key, ctx.ip);
    if (blocked) throw new AppError('rate_limited', 'too many enrollment attempts', { retryAfter: blocked });
    const r = await enrollLevel1(db, hasher, { ...values, password: s('password') }).catch(async (err) => {
      await limiter.release(key);
      throw err;
    });
    const csrf = csrfToken(csrfSecret, formNonce(ctx));
    // Not a guess: nothing counted (and, unlike a success, the failures so far are not cleared either).
    if (r.outcome === 'invalid_input' || r.outcome === 'password') await limiter.release(key);
    if (r.outcome === 'invalid_input' || r.outcome === 'password') {
      const message =
        r.outcome === 'password'
          ? t(l, `pw_${r.problem}`)
          : t(l, ({ pin: 'invalidPin', birthDate: 'invalidBirthDate', fullName: 'invalidFullName' } as const)[r.field]);
      ctx.status = 400;
      ctx.body = enrollPage(l, csrf, values, message);
      return;
    }
    const created = r.outcome === 'created';
    if (created) await limiter.succeed(key);
    else await limiter.fail(key, ctx.ip);
    await recordEvent(db, {
      actor: { type: 'citizen', id: created ? r.accountId : null },
      action: 'enrollment',
      outcome: created ? 'success' : 'failure',
      reason: created ? null : r.outcome,
      subject: created ? r.accountId : key,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { level: 1, channel: 'web' },
    });
    ctx.body = page(
      l,
      t(l, 'enrollTitle'),
      `<p>${h(t(l, 'enrollDone'))}</p><p><a href="/account">${h(t(l, 'accountTitle'))}</a></p>`,
    );
  });

  return router;
}
