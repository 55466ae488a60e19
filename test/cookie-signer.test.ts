/**
 * Signed cookies: the signer gives keygrip's signatures (HMAC-SHA-1, base64url without padding), so a cookie signed by
 * a node of the previous version (keygrip) verifies here and the other way round; rotation keeps old keys verifying;
 * anything else is refused.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { cookieSigner } from '../src/keys/index.ts';

/** keygrip's own rule (keygrip/index.js): base64 with '/' -> '_', '+' -> '-', '=' removed. */
const keygripSign = (data: string, key: string) =>
  createHmac('sha1', key)
    .update(data)
    .digest('base64')
    .replace(/\/|\+|=/g, (x) => ({ '/': '_', '+': '-', '=': '' })[x]!);

describe('cookie signer', () => {
  const data = ['_session=abc', 'lang=vi', '_interaction_resume=Nguyễn 🙂', ''];

  it("signs as keygrip does, and verifies keygrip's signatures", () => {
    const signer = cookieSigner(['key-one-0123456789', 'key-two-0123456789']);
    for (const d of data) {
      assert.equal(signer.sign(d), keygripSign(d, 'key-one-0123456789'));
      assert.equal(signer.index(d, keygripSign(d, 'key-one-0123456789')), 0);
      assert.equal(signer.verify(d, keygripSign(d, 'key-one-0123456789')), true);
    }
  });

  it('verifies with a previous key after a rotation (its index), and refuses an unknown key', () => {
    const signer = cookieSigner(['new-key-0123456789', 'old-key-0123456789']);
    assert.equal(signer.index('a=b', keygripSign('a=b', 'old-key-0123456789')), 1);
    assert.equal(signer.index('a=b', keygripSign('a=b', 'other-key-012345678')), -1);
  });

  it('refuses a signature of other data, a changed, padded, truncated or missing one', () => {
    const signer = cookieSigner(['key-one-0123456789']);
    const good = signer.sign('a=b');
    assert.equal(signer.index('a=c', good), -1);
    const flipped = (good[0] === 'A' ? 'B' : 'A') + good.slice(1);
    for (const bad of [flipped, `${good}=`, good.slice(0, -1), `${good}A`, '', ' '.repeat(27)])
      assert.equal(signer.index('a=b', bad), -1, JSON.stringify(bad));
    assert.equal(signer.index('a=b', undefined as unknown as string), -1);
  });

  it('is made once per key list (a provider swap reuses it) and refuses an empty list', () => {
    const keys = ['key-one-0123456789'];
    assert.equal(cookieSigner(keys), cookieSigner(keys));
    assert.throws(() => cookieSigner([]), /must not be empty/);
  });
});
