/** Sealing at rest (AES-256-GCM): wrong key, wrong row, altered or truncated ciphertext never open. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { seal, unseal } from '../src/keys/index.ts';

const key = randomBytes(32);

it('opens what it sealed, for the same row only', () => {
  const sealed = seal(key, 'secret material', 'kid-1');
  assert.equal(unseal(key, sealed, 'kid-1'), 'secret material');
  assert.throws(() => unseal(key, sealed, 'kid-2'));
  assert.throws(() => unseal(randomBytes(32), sealed, 'kid-1'));
});

it('refuses altered bodies and truncated authentication tags', () => {
  const [v, iv, body, tag] = seal(key, 'secret material', 'kid-1').split('.');
  const flipped = Buffer.from(body!, 'base64url');
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  assert.throws(() => unseal(key, [v, iv, flipped.toString('base64url'), tag].join('.'), 'kid-1'));
  const short = Buffer.from(tag!, 'base64url').subarray(0, 4).toString('base64url');
  assert.throws(() => unseal(key, [v, iv, body, short].join('.'), 'kid-1'), /tag length/);
});
