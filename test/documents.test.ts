/**
 * Discovery and JWKS, served before Koa from prepared buffers. Invariants: the fast path and the Koa path send the
 * same document with the same security, caching and CORS headers; If-None-Match with the current ETag gets 304 and
 * no body; HSTS only when the request came over https (here: through the trusted proxy); a hostile request id is
 * cleaned; anything but an exact GET falls through to Koa.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Service } from '../src/main.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { startTestService } from './helpers/service.ts';

let database: TestDatabase;
let service: Service;

before(async () => {
  database = await freshDatabase();
  service = await startTestService(database.url, { TRUST_PROXY: 'true', JWKS_MAX_AGE_SECONDS: '321' });
});

after(async () => {
  await service?.close();
  await database?.drop();
});

const SECURITY = [
  'content-security-policy',
  'x-content-type-options',
  'referrer-policy',
  'x-frame-options',
  'cross-origin-opener-policy',
];

/** Headers that matter for a document response (not date, request id or keep-alive). */
function shape(res: Response): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const h of [...SECURITY, 'cache-control', 'etag', 'access-control-allow-origin', 'content-type'])
    out[h] = res.headers.get(h);
  return out;
}

describe('public documents', () => {
  for (const path of ['/jwks', '/.well-known/openid-configuration']) {
    it(`${path}: same document and headers on the fast path and through Koa, 304 on a current ETag`, async () => {
      await fetch(`${service.url}${path}`); // the provider builds discovery on its first request
      const fast = await fetch(`${service.url}${path}`);
      const viaKoa = await fetch(`${service.url}${path}?via=koa`);
      assert.equal(fast.status, 200);
      assert.equal(viaKoa.status, 200);
      const body = await fast.text();
      assert.equal(body, await viaKoa.text());
      assert.ok(JSON.parse(body), 'a JSON document');
      assert.deepEqual(shape(fast), shape(viaKoa));
      assert.match(fast.headers.get('etag') ?? '', /^"[\w-]{27}"$/);
      assert.equal(fast.headers.get('cache-control'), 'public, max-age=321');
      assert.equal(fast.headers.get('access-control-allow-origin'), '*');
      assert.match(fast.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      assert.equal(fast.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(fast.headers.get('strict-transport-security'), null, 'no HSTS over plain http');
      assert.equal(Number(fast.headers.get('content-length')), Buffer.byteLength(body));

      const etag = fast.headers.get('etag')!;
      for (const url of [`${service.url}${path}`, `${service.url}${path}?via=koa`]) {
        const again = await fetch(url, { headers: { 'if-none-match': etag } });
        assert.equal(again.status, 304, url);
        assert.equal(await again.text(), '');
        assert.equal(again.headers.get('etag'), etag);
        assert.match(again.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      }
      const stale = await fetch(`${service.url}${path}`, { headers: { 'if-none-match': '"old"' } });
      assert.equal(stale.status, 200);
      assert.equal(await stale.text(), body);
    });
  }

  it('sends HSTS when the trusted proxy says the request came over https, on both paths', async () => {
    for (const url of [`${service.url}/jwks`, `${service.url}/jwks?via=koa`]) {
      const res = await fetch(url, { headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=31536000; includeSubDomains/, url);
      await res.arrayBuffer();
    }
  });

  it('echoes a clean request id and makes one when none is sent', async () => {
    const res = await fetch(`${service.url}/jwks`, { headers: { 'x-request-id': 'abc-123<script>\u00e9' } });
    assert.equal(res.headers.get('x-request-id'), 'abc-123script');
    const fresh = await fetch(`${service.url}/jwks`);
    assert.match(fresh.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    await Promise.all([res.arrayBuffer(), fresh.arrayBuffer()]);
  });

  it('leaves other methods to Koa: HEAD has the headers and no body', async () => {
    const head = await fetch(`${service.url}/jwks`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('etag') ?? '', /^"/);
    assert.equal(await head.text(), '');
  });

  it('refuses POST /jwks with 405 Method Not Allowed and the methods it allows', async () => {
    // RFC 9110 15.5.6: the resource exists, the method is not supported: 405, and the Allow header lists GET.
    const post = await fetch(`${service.url}/jwks`, { method: 'POST', body: 'x' });
    await post.arrayBuffer();
    assert.equal(post.status, 405, 'POST /jwks');
    assert.match(post.headers.get('allow') ?? '', /\bGET\b/, 'POST /jwks: Allow');
  });
});
