/**
 * Requests a node makes to URLs portals registered (back-channel logout): a special-use address is refused whether
 * the URL names it as an IP literal or a name resolves to it, so a portal cannot make a node call into its own network
 * (cloud metadata, private services); loopback names pass (development portals; refused at registration in production).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { isSpecialUse, postForm } from '../src/oidc/outgoing.ts';

describe('outgoing requests to portals', () => {
  it('knows the special-use ranges', () => {
    for (const a of [
      '10.1.2.3',
      '172.20.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '127.0.0.2',
      '100.64.0.1',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:10.0.0.1',
      '0.0.0.0',
    ])
      assert.equal(isSpecialUse(a), true, a);
    for (const a of ['8.8.8.8', '203.113.131.1', '2001:4860:4860::8888']) assert.equal(isSpecialUse(a), false, a);
  });

  it('refuses an IP literal in a special-use range without connecting, and posts to a loopback name', async () => {
    await assert.rejects(postForm('https://169.254.169.254/latest', 'a=1', 1000), /special-use/);
    await assert.rejects(postForm('http://127.0.0.2:9/x', 'a=1', 1000), /special-use/);
    await assert.rejects(postForm('https://[fd00::1]/x', 'a=1', 1000), /special-use/);
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      let b = '';
      req.on('data', (c) => {
        b += c;
      });
      req.on('end', () => {
        bodies.push(b);
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      assert.equal(await postForm(`http://127.0.0.1:${port}/bcl`, 'logout_token=x', 2000), 204);
      assert.deepEqual(bodies, ['logout_token=x']);
    } finally {
      server.close();
    }
  });
});
