/** oidc-provider's own pages (errors, logout confirmation, logged out), in our layout and languages. */
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { errorPage, h, type Lang, page, pickLang, t } from '../ui/index.ts';

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
    `<p>${h(t(lang, 'logoutLead'))}</p>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">${h(t(lang, 'logoutYes'))}</button>
<button class="secondary" type="submit" form="op.logoutForm">${h(t(lang, 'logoutNo'))}</button>`,
  );
};

/** Shown after logout when the portal gave no post_logout_redirect_uri. */
export const postLogoutSuccessSource = async (ctx: KoaContextWithOIDC): Promise<void> => {
  const lang = langOf(ctx);
  ctx.type = 'html';
  ctx.body = page(lang, t(lang, 'logoutTitle'), `<p>${h(t(lang, 'loggedOut'))}</p>`);
};
