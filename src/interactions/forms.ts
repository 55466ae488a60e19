/**
 * Form helpers shared by the citizen pages: parsing and CSRF for forms bound to the browser's nonce, labelled inputs
 * (errors tied to their field with aria-invalid and aria-describedby), the hidden fields every form carries.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Context } from 'koa';
import { type Html, html, type Lang, pickLang } from '../ui/index.ts';
import { byNonce, csrfToken, formNonce, requireCsrf } from './csrf.ts';

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

/** A form's error: its message, and the field it is about (marked invalid and tied to the message). */
export interface FormError {
  field?: string;
  message: string;
}

/** The error above a form; inputs refer to it by id. */
export const errorBlock = (error?: FormError) =>
  error ? html`<p class="error" role="alert" id="form-error">${error.message}</p>` : '';

/**
 * A labelled input; password inputs never echo a value. `extra` is more attributes, as markup; `help` is the id of a
 * hint the input is described by; an `error` about this field marks it invalid and ties the message to it.
 */
export function input(
  name: string,
  label: string,
  value: string,
  type = 'text',
  extra: Html = html``,
  error?: FormError,
  help?: string,
): Html {
  const invalid = error?.field === name;
  const described = [invalid ? 'form-error' : '', help ?? ''].filter(Boolean).join(' ');
  return html`<label for="${name}">${label}</label><input type="${type}" id="${name}" name="${name}" ${extra}${
    invalid ? html` aria-invalid="true"` : ''
  }${described ? html` aria-describedby="${described}"` : ''} value="${type === 'password' ? '' : value}">`;
}

/** The hidden fields every form carries. */
export const hidden = (csrf: string, lang: Lang, more: Record<string, string> = {}): Html =>
  html`${[['csrf', csrf], ['lang', lang], ...Object.entries(more)].map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  )}`;
