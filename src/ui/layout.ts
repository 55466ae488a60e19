/**
 * Server-rendered pages: one layout, no inline script or style (the CSP allows neither), every interpolated value
 * escaped with `escape-html`. Pages are small and work on old phone browsers without JavaScript.
 */
import escapeHtml from 'escape-html';
import { type Lang, t } from './i18n.ts';

/** Escapes text for HTML element content and quoted attributes. */
export const h = (value: unknown): string => escapeHtml(String(value ?? ''));

/** A whole page. `body` must already be escaped HTML. `langSwitch` is the URL of this page in the other language. */
export function page(lang: Lang, title: string, body: string, langSwitch?: string): string {
  return `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(title)} · ${h(t(lang, 'service'))}</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header><span class="brand">${h(t(lang, 'service'))}</span>${
    langSwitch ? ` <a class="lang" href="${h(langSwitch)}">${h(t(lang, 'otherLang'))}</a>` : ''
  }</header>
<main>
<h1>${h(title)}</h1>
${body}
</main>
</body>
</html>`;
}

/** A standalone error page (no details of internals). */
export function errorPage(lang: Lang, code: string, message?: string): string {
  return page(
    lang,
    t(lang, code === 'temporarily_unavailable' ? 'unavailableTitle' : 'errorTitle'),
    `<p>${h(message ?? t(lang, 'errorLead'))}</p><p class="muted">${h(t(lang, 'errorCode'))}: <code>${h(code)}</code></p>`,
  );
}
