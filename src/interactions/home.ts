/** The service's own pages: home (`/`) and the information pages (help, privacy notice, terms, accessibility). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';
import { html, INFO_PAGES, langLink, page, pickLang, t } from '../ui/index.ts';

const lang = (ctx: Context) => pickLang(ctx.query.lang, ctx.cookies.get('lang'), ctx.get('accept-language'));

/**
 * Same-origin scripts (the CSP allows no other): @simplewebauthn/browser's UMD build, read from the installed package
 * (its version is the lock file's), and our own passkey.js that uses it.
 */
const SCRIPTS: Record<string, Buffer> = {
  '/static/webauthn.js': readFileSync(
    // The package exports only its modules: its bundle is found beside its CommonJS entry (script/index.js).
    new URL(
      '../dist/bundle/index.umd.min.js',
      pathToFileURL(createRequire(import.meta.url).resolve('@simplewebauthn/browser')),
    ),
  ),
  '/static/passkey.js': readFileSync(new URL('../../static/passkey.js', import.meta.url)),
};

/** Routes for `/`, the information pages and the passkey scripts. */
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

  for (const [path, body] of Object.entries(SCRIPTS)) {
    router.get(path, (ctx) => {
      ctx.type = 'text/javascript; charset=utf-8';
      ctx.set('cache-control', 'public, max-age=3600');
      ctx.body = body;
    });
  }

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
