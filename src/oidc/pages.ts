/**
 * oidc-provider's own pages (errors, logout confirmation, logged out, the auto-submitting form_post page), in our
 * layout and languages. What this enforces: none of them carries inline script or style (the CSP allows neither);
 * the one page that submits itself does so with a same-origin script file, and has a button that works without it.
 */
import { readFileSync } from 'node:fs';
import type { Middleware } from 'koa';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { errorPage, html, type Lang, page, pickLang, t } from '../ui/index.ts';

export const langOf = (ctx: KoaContextWithOIDC | import('koa').Context): Lang =>
  pickLang(ctx.query?.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));

/** Error page: the OIDC error code only; descriptions may carry internals and are logged instead. */
export const renderError: NonNullable<Configuration['renderError']> = async (ctx, out) => {
  ctx.type = 'html';
  const lang = langOf(ctx);
  const code = String(out.error ?? 'server_error');
  ctx.body = errorPage(lang, code, code === 'temporarily_unavailable' ? t(lang, 'temporarilyUnavailable') : undefined);
};

/** Logout confirmation; `form` is oidc-provider's hidden form (id op.logoutForm) carrying the xsrf token. */
export const logoutSource = async (ctx: KoaContextWithOIDC, form: string): Promise<void> => {
  const lang = langOf(ctx);
  ctx.type = 'html';
  ctx.body = page(
    lang,
    t(lang, 'logoutTitle'),
    // `form` is oidc-provider's own markup (its values escaped by it): the one raw insertion, asked for by name.
    html`<p>${t(lang, 'logoutLead')}</p>${html.raw`${form}`}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">${t(lang, 'logoutYes')}</button>
<button class="secondary" type="submit" form="op.logoutForm">${t(lang, 'logoutNo')}</button>`,
  );
};

/** Shown after logout when the portal gave no post_logout_redirect_uri. */
export const postLogoutSuccessSource = async (ctx: KoaContextWithOIDC): Promise<void> => {
  const lang = langOf(ctx);
  ctx.type = 'html';
  ctx.body = page(lang, t(lang, 'logoutTitle'), html`<p>${t(lang, 'loggedOut')}</p>`);
};

/** Where the form_post page's script is served (a same-origin file, allowed by `script-src 'self'`). */
const FORM_POST_SCRIPT = '/static/form-post.js';
const formPostScript = readFileSync(new URL('../../static/form-post.js', import.meta.url));

// oidc-provider's form_post template (lib/response_modes/form_post.js): one form, hidden inputs whose values (and the
// action) are escaped with its htmlSafe; the CSP it changes gains the hash of its inline auto-submit script.
const FORM = /<form method="post" action="([^"]*)">/;
const HIDDEN = /<input type="hidden" name="([^"]*)" value="([^"]*)"\/>/g;
const SCRIPT_HASH = / 'sha256-[A-Za-z0-9+/=]+'/g;
const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const unescapeHtml = (s: string) => s.replace(/&(?:amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]!);

/** Our form_post page: the same form, sent at once by a same-origin script, and by its visible button without. */
function formPostPage(lang: Lang, action: string, inputs: [string, string][], logout: boolean): string {
  const label = t(lang, logout ? 'logoutYes' : 'unmetBack');
  const hidden = inputs.map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
  return page(
    lang,
    t(lang, logout ? 'logoutTitle' : 'unmetBack'),
    html`<form id="form-post" method="post" action="${action}">${hidden}<button autofocus type="submit">${label}</button></form>
<script src="${FORM_POST_SCRIPT}"></script>`,
  );
}

/**
 * Provider middleware (`provider.use`) for the pages oidc-provider renders with an inline script, which the CSP
 * refuses: the form_post response (authorization results and errors for response_mode=form_post) and the logout
 * auto-submit when nobody is signed in. Recognised by the script hash oidc-provider adds to the CSP, re-rendered in
 * our layout without inline script, and the hash taken out again. Also serves the page's script file. An unrecognised
 * page is left as oidc-provider made it (its hash keeps it working); the browser test notices.
 */
export const formPostPages: Middleware = async (ctx, next) => {
  if (ctx.path === FORM_POST_SCRIPT && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.body = formPostScript;
    return;
  }
  await next();
  const csp = ctx.response.get('content-security-policy');
  if (typeof ctx.body !== 'string' || !csp.includes("'sha256-") || !ctx.response.is('html')) return;
  const action = FORM.exec(ctx.body)?.[1];
  if (action === undefined) return;
  const inputs = [...ctx.body.matchAll(HIDDEN)].map((m): [string, string] => [m[1]!, unescapeHtml(m[2]!)]);
  const logout = inputs.some(([name]) => name === 'xsrf');
  ctx.body = formPostPage(langOf(ctx), unescapeHtml(action), inputs, logout);
  ctx.set('content-security-policy', csp.replace(SCRIPT_HASH, ''));
};
