/**
 * Pages escape by default. Invariant: every value put into a page goes through the `html` tag, which escapes it in text
 * and in quoted attributes; templates nest and join without double escaping; unescaped markup is only ever asked for
 * by name (`html.raw`); a page body cannot be a plain string; the language switch links only to our own paths; and no
 * hand-called escape helper (`h(`) is left in src/ to be forgotten.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import * as ui from '../src/ui/index.ts';
import { errorPage, html, langLink, page } from '../src/ui/index.ts';

const EVIL = `<script>alert("x")</script> & 'q'`;
const ESCAPED = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;';

describe('the html tag', () => {
  it('escapes a value in text and in quoted attributes', () => {
    assert.equal(
      String(html`<p title="${EVIL}"><input value="${EVIL}">${EVIL}</p>`),
      `<p title="${ESCAPED}"><input value="${ESCAPED}">${ESCAPED}</p>`,
    );
    assert.equal(String(html`<b>${1}${null}${undefined}${false}</b>`), '<b>1false</b>', 'nothing for null/undefined');
  });

  it('nests templates and joins arrays without escaping twice', () => {
    const inner = html`<b>${'&'}</b>`;
    assert.equal(String(html`<div>${inner}</div>`), '<div><b>&amp;</b></div>');
    assert.equal(
      String(html`<ul>${['<a>', 'b&'].map((x) => html`<li>${x}</li>`)}</ul>`),
      '<ul><li>&lt;a&gt;</li><li>b&amp;</li></ul>',
    );
    assert.equal(String(html`${['<i>', html`<i>`]}`), '&lt;i&gt;<i>', 'a string in an array is still escaped');
  });

  it('leaves markup unescaped only when asked for by name', () => {
    assert.equal(String(html`<p>${'<b>x</b>'}</p>`), '<p>&lt;b&gt;x&lt;/b&gt;</p>');
    assert.equal(String(html`<p>${html.raw`${'<b>x</b>'}`}</p>`), '<p><b>x</b></p>');
  });
});

describe('the layout', () => {
  it('escapes the title and takes only a template as body', () => {
    const out = page('en', EVIL, html`<p>${EVIL}</p>`);
    assert.ok(out.includes(`<title>${ESCAPED} · `) && out.includes(`<h1>${ESCAPED}</h1>`));
    assert.ok(out.includes(`<p>${ESCAPED}</p>`) && !out.includes('<script>'));
    assert.equal(typeof out, 'string', 'a string for Koa');
    // @ts-expect-error a plain string is not a page body (and would be escaped, not trusted, if forced in)
    const forced = page('en', 't', '<b>x</b>');
    assert.ok(forced.includes('\n&lt;b&gt;x&lt;/b&gt;\n'));
    const error = errorPage('vi', EVIL, EVIL);
    assert.ok(error.includes(`<p>${ESCAPED}</p>`) && error.includes(`<code>${ESCAPED}</code>`));
  });

  it('has one language switch, to our own paths only', () => {
    assert.equal(langLink('vi', '/enroll'), '/enroll?lang=en');
    assert.equal(langLink('en', '/recover/officer'), '/recover/officer?lang=vi');
    assert.equal(langLink('vi', '/interaction/a%2Fb'), '/interaction/a%2Fb?lang=en');
    assert.equal(langLink('en', '/account?lang=en&x=1'), '/account?lang=vi&x=1', 'the query is kept, lang replaced');
    // A scheme or host is dropped and leading slashes collapse: never a link off this origin.
    for (const [hostile, own] of [
      ['//evil.example/x', '/x?lang=en'],
      ['https://evil.example/x', '/x?lang=en'],
      ['\\\\evil.example/x', '/x?lang=en'],
      ['/.//evil.example/x', '/evil.example/x?lang=en'],
      ['javascript:alert(1)', '/alert(1)?lang=en'],
    ]) {
      assert.equal(langLink('vi', hostile!), own, hostile);
    }
    const out = page('vi', 't', html``, langLink('vi', '/a"b<c>'));
    assert.ok(out.includes('<a class="lang" href="/a%22b%3Cc%3E?lang=en" lang="en">English</a>'), out);
    assert.ok(!page('vi', 't', html``).includes('class="lang"'), 'no switch unless asked');
  });
});

describe('src/', () => {
  const root = path.resolve(import.meta.dirname, '../src');
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ name: f, text: readFileSync(path.join(root, f), 'utf8') }));

  it('builds no HTML with a hand-called escape helper', () => {
    assert.ok(files.length > 20);
    const offenders = files.filter((f) => /(?<![\w$.])h\(/.test(f.text)).map((f) => f.name);
    assert.deepEqual(offenders, [], 'h( left in src/');
    assert.deepEqual(
      files.filter((f) => /from 'escape-html'/.test(f.text)).map((f) => f.name),
      [],
      'escape-html imported in src/',
    );
  });

  it('exports no h() from src/ui', () => {
    assert.equal('h' in ui, false);
    assert.equal(typeof ui.html, 'function');
  });
});
