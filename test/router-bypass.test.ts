/**
 * The provider's back-channel endpoints skip our routers (src/http/app.ts): only where no router answers them, so
 * the answer is what it was when every router was asked first.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import Router from '@koa/router';
import Koa from 'koa';
import pino from 'pino';
import { createApp } from '../src/http/app.ts';
import type { ProviderHost } from '../src/oidc/index.ts';

async function serve(routers: Router[]) {
  // A stand-in for oidc-provider (mounted the same way): it answers every path it is given.
  const provider = new Koa();
  provider.use((ctx) => {
    ctx.body = `provider ${ctx.method} ${ctx.path}`;
  });
  const host = {
    current: provider,
    jwks: () => ({ body: '{"keys":[]}', etag: '"x"' }),
  } as unknown as ProviderHost;
  const { listener } = createApp({
    host,
    cookieKeys: ['k'.repeat(32)],
    jwksMaxAge: 60,
    readiness: async () => ({ ready: true, status: 'ready' }) as never,
    log: pino({ level: 'silent' }),
    trustProxy: false,
    routers,
  });
  const server = createServer(listener).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, close: () => new Promise((r) => server.close(r)) };
}

test('token endpoints reach the provider past the routers; a router that claims one still answers it', async () => {
  const ours = new Router();
  ours.get('/hello', (ctx) => {
    ctx.body = 'router hello';
  });
  const claiming = new Router();
  claiming.post('/token/revocation', (ctx) => {
    ctx.body = 'router revocation';
  });
  const { base, close } = await serve([ours, claiming]);
  try {
    const post = (p: string) => fetch(`${base}${p}`, { method: 'POST' }).then((r) => r.text());
    assert.equal(await post('/token'), 'provider POST /token');
    assert.equal(await post('/token/introspection'), 'provider POST /token/introspection');
    assert.equal(await post('/token/revocation'), 'router revocation');
    assert.equal(await fetch(`${base}/me`).then((r) => r.text()), 'provider GET /me');
    assert.equal(await fetch(`${base}/hello`).then((r) => r.text()), 'router hello');
    // Security headers are still set on what skips the routers.
    const res = await fetch(`${base}/token`, { method: 'POST' });
    assert.ok(res.headers.get('x-content-type-options'));
    assert.ok(res.headers.get('x-request-id'));
  } finally {
    await close();
  }
});
