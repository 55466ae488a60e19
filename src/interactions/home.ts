/** The service's own pages: home (`/`) and the information pages (help, privacy notice, terms, accessibility). */
import Router from '@koa/router';
import type { Context } from 'koa';
import { html, INFO_PAGES, langLink, page, pickLang, t } from '../ui/index.ts';

const lang = (ctx: Context) => pickLang(ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));

/** Routes for `/` and the information pages. */
export function homeRoutes(): Router {
  const router = new Router();

  router.get('/', (ctx) => {
    const l = lang(ctx);
    ctx.set('cache-control', 'no-cache');
    ctx.body = page(
      l,
      t(l, 'homeTitle'),
      html`<p>${t(l, 'homeLead')}</p>
<div class="home-actions">
<a class="button" href="/account?lang=${l}">${t(l, 'homeAccount')}</a>
<a class="button secondary" href="/enroll?lang=${l}">${t(l, 'homeEnroll')}</a>
<a class="button secondary" href="/recover?lang=${l}">${t(l, 'homeRecover')}</a>
</div>
<p>${t(l, 'homeLevels')}</p>
<p class="muted">${t(l, 'pinHelp')} <a href="/help?lang=${l}">${INFO_PAGES['/help'][l].title}</a></p>`,
      langLink(l, '/'),
    );
  });

  for (const path of Object.keys(INFO_PAGES) as (keyof typeof INFO_PAGES)[]) {
    router.get(path, (ctx) => {
      const l = lang(ctx);
      const { title, paragraphs } = INFO_PAGES[path][l];
      ctx.set('cache-control', 'no-cache');
      ctx.body = page(l, title, html`${paragraphs.map((p) => html`<p>${p}</p>`)}`, langLink(l, path));
    });
  }
  return router;
}
