/**
 * Server-rendered pages: one layout, no inline script or style (the CSP allows neither). What this enforces: markup
 * is built only with the `html` tag, which escapes every interpolated value; a page body is such a template, never a
 * string (a type error), and markup that must not be escaped is asked for by name (`html.raw`). Pages are small and
 * work on old phone browsers without JavaScript.
 */
import { html, type SafeHtml } from '@remix-run/html-template';
import { CONTACT, INFO_PAGES } from './content.ts';
import { type Lang, t } from './i18n.ts';

export { html };

/** Markup made by the `html` tag (its values escaped); a plain string is not one. */
export type Html = SafeHtml;

declare const ownPath: unique symbol;
/** A path of this service in the other language, made only by `langLink`. */
export type LangLink = string & { readonly [ownPath]: true };

const SELF = 'http://self.invalid';

/**
 * The language switch: the link to a page of ours in the other language. `path` is the request's path and query
 * (`ctx.url`) or an explicit path; its `lang` parameter is set to the other language. Only a path on this origin
 * comes out: a scheme or host in `path` is dropped, and leading slashes are collapsed (no `//host` link).
 */
export function langLink(lang: Lang, path: string): LangLink {
  const url = new URL(path, SELF);
  url.searchParams.set('lang', lang === 'vi' ? 'en' : 'vi');
  return `/${url.pathname.replace(/^\/+/, '')}${url.search}` as LangLink;
}

/** A whole page, as the string Koa sends. `body` is made by `html`; `langSwitch` (from `langLink`) adds the switch. */
export function page(lang: Lang, title: string, body: Html, langSwitch?: LangLink): string {
  return String(html`<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${t(lang, 'service')}</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header><a class="brand" href="/?lang=${lang}">${t(lang, 'service')}</a>${
    langSwitch
      ? html` <a class="lang" href="${langSwitch}" lang="${lang === 'vi' ? 'en' : 'vi'}">${t(lang, 'otherLang')}</a>`
      : ''
  }</header>
<main>
<h1>${title}</h1>
${body}
</main>
${footer(lang)}
</body>
</html>`);
}

/** Every page's footer: the helpline and the information pages (content.ts). */
function footer(lang: Lang): Html {
  const links = (Object.keys(INFO_PAGES) as (keyof typeof INFO_PAGES)[]).map(
    (path) => html`<li><a href="${path}?lang=${lang}">${INFO_PAGES[path][lang].title}</a></li>`,
  );
  return html`<footer>
<p>${t(lang, 'footerHotline')}: <a href="tel:${CONTACT.hotline.replace(/\s/g, '')}">${CONTACT.hotline}</a> · <a href="mailto:${CONTACT.email}">${CONTACT.email}</a></p>
<nav aria-label="${t(lang, 'footerNav')}"><ul>${links}</ul></nav>
<p class="muted">${CONTACT.operator[lang]}</p>
</footer>`;
}

/**
 * A standalone error page (no details of internals), with a way forward: recovery after a lock, else home. `path`:
 * the page that failed, when it can be asked for again (a GET), for the language switch.
 */
export function errorPage(lang: Lang, code: string, message?: string, path?: string): string {
  const title =
    code === 'temporarily_unavailable' ? 'unavailableTitle' : code === 'rate_limited' ? 'lockedTitle' : 'errorTitle';
  const forward =
    code === 'rate_limited'
      ? html`<p><a href="/recover?lang=${lang}">${t(lang, 'lockedRecover')}</a></p>`
      : html`<p><a href="/?lang=${lang}">${t(lang, 'service')}</a></p>`;
  return page(
    lang,
    t(lang, title),
    html`<p>${message ?? t(lang, 'errorLead')}</p>${forward}<p class="muted">${t(lang, 'errorCode')}: <code>${code}</code></p>`,
    path ? langLink(lang, path) : undefined,
  );
}
