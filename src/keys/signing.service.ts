/**
 * Signing keys and their lifecycle: staged -> active -> retired -> removed, or revoked (compromise).
 *
 * Invariants: a key is published (JWKS) before it signs, for at least the lead time, so no portal ever sees a kid it
 * has not cached; a retired key stays published for the retention time, so tokens it signed keep verifying; a
 * revoked key leaves JWKS at once. One active key per algorithm (a unique index enforces it).
 *
 * Threat note: private keys exist in clear only in process memory; `kid` is the RFC 7638 thumbprint and is bound to
 * the ciphertext as AES-GCM associated data, so a sealed key cannot be swapped onto another row.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { seal, unseal } from './master.ts';
import {
  insertKey,
  notifyKeysChanged,
  type SigningKeyRow,
  selectKeys,
  setKeyState,
  tryWithKeyLock,
  updateSealed,
  withKeyLock,
} from './signing.repository.ts';

/** Algorithms dinhdanh signs with. ES256 is the default for every client. */
export const SIGNING_ALGS = ['ES256', 'PS256', 'RS256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** Timing of the lifecycle, in seconds (rotation in days). */
export interface KeyPolicy {
  leadSeconds: number;
  retentionSeconds: number;
  rotationDays: number;
}

/** What the provider needs: active private keys (one per alg) and the public JWKS (staged, active, retired). */
export interface KeyMaterial {
  signing: JWK[];
  jwks: { keys: JWK[] };
  fingerprint: string;
  /**
   * When the next scheduled transition of these keys falls due under the policy given to `loadKeyMaterial` (epoch
   * ms; null: none is scheduled; absent: no policy given).
   */
  nextTransitionAt?: number | null;
}

export function isSigningAlg(alg: string): alg is SigningAlg {
  return (SIGNING_ALGS as readonly string[]).includes(alg);
}

async function newKey(master: Buffer, alg: SigningAlg) {
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'PS256' || alg === 'RS256' ? { modulusLength: 2048 } : {}),
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const priv = await exportJWK(privateKey);
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = priv;
  const kid = await calculateJwkThumbprint(pub);
  return {
    kid,
    publicJwk: { ...pub, kid, alg, use: 'sig' },
    privateJwkSealed: seal(master, JSON.stringify(priv), kid),
  };
}

/** First start: an active key for every algorithm that has none (nothing can be cached yet, so no lead time). */
export async function ensureActiveKeys(
  db: Kysely<DB>,
  master: Buffer,
  algs: readonly SigningAlg[] = SIGNING_ALGS,
): Promise<string[]> {
  const created = await withKeyLock(db, async (trx) => {
    const active = new Set((await selectKeys(trx)).filter((k) => k.state === 'active').map((k) => k.alg));
    const made: string[] = [];
    for (const alg of algs.filter((a) => !active.has(a))) {
      const k = await newKey(master, alg);
      await insertKey(trx, { ...k, alg, state: 'active', autoActivate: false, operator: 'system' });
      made.push(k.kid);
    }
    return made;
  });
  if (created.length) await notifyKeysChanged(db);
  return created;
}

/** Loads the current key material; with `policy`, also when its next scheduled transition falls due. */
export async function loadKeyMaterial(db: Kysely<DB>, master: Buffer, policy?: KeyPolicy): Promise<KeyMaterial> {
  const keys = await selectKeys(db);
  const published = keys.filter((k) => k.state === 'staged' || k.state === 'active' || k.state === 'retired');
  const signing = keys
    .filter((k) => k.state === 'active')
    .map((k) => ({
      ...(JSON.parse(unseal(master, k.privateJwkSealed, k.kid)) as JWK),
      kid: k.kid,
      alg: k.alg,
      use: 'sig',
    }));
  if (!signing.some((k) => k.alg === 'ES256')) throw new Error('no active ES256 signing key');
  return {
    signing,
    jwks: { keys: published.map((k) => k.publicJwk as JWK) },
    fingerprint: keys
      .map((k) => `${k.kid}:${k.state}`)
      .sort()
      .join(','),
    ...(policy ? { nextTransitionAt: nextTransitionAt(keys, policy) } : {}),
  };
}

/** Every key with its state and times (no private material). */
export async function listKeys(db: Kysely<DB>) {
  return (await selectKeys(db)).map(({ privateJwkSealed: _s, publicJwk: _p, ...k }) => k);
}

/** Stages a new key (published, not yet signing). */
export async function generateKey(
  db: Kysely<DB>,
  master: Buffer,
  alg: SigningAlg,
  operator: string,
  autoActivate = false,
) {
  const k = await newKey(master, alg);
  await withKeyLock(db, (trx) => insertKey(trx, { ...k, alg, state: 'staged', autoActivate, operator }));
  await notifyKeysChanged(db);
  return k.kid;
}

async function find(db: Kysely<DB>, kid: string): Promise<SigningKeyRow> {
  const key = (await selectKeys(db)).find((k) => k.kid === kid);
  if (!key) throw new AppError('not_found', `no key ${kid}`);
  return key;
}

/** Makes a staged key the active one of its algorithm; the previous active key is retired (still published). */
export async function activateKey(db: Kysely<DB>, kid: string, policy: KeyPolicy): Promise<{ retired: string | null }> {
  const out = await withKeyLock(db, async (trx) => {
    const key = await find(trx, kid);
    if (key.state !== 'staged')
      throw new AppError('conflict', `key ${kid} is ${key.state}; only a staged key can be activated`);
    const ready = key.createdAt.getTime() + policy.leadSeconds * 1000;
    if (Date.now() < ready) {
      throw new AppError(
        'conflict',
        `key ${kid} is published since ${key.createdAt.toISOString()}; it can sign from ${new Date(ready).toISOString()} (publish lead time)`,
      );
    }
    const current = (await selectKeys(trx)).find((k) => k.alg === key.alg && k.state === 'active');
    if (current) await setKeyState(trx, current.kid, 'retired');
    await setKeyState(trx, kid, 'active');
    return { retired: current?.kid ?? null };
  });
  await notifyKeysChanged(db);
  return out;
}

/**
 * Retires an active key: a staged key of the same algorithm, published for at least the lead time, takes over.
 * Refused when there is none (nothing would sign); `keys rotate` prepares one.
 */
export async function retireKey(db: Kysely<DB>, kid: string, policy: KeyPolicy): Promise<{ activated: string }> {
  const key = await find(db, kid);
  if (key.state !== 'active')
    throw new AppError('conflict', `key ${kid} is ${key.state}; only an active key can be retired`);
  const ready = (await selectKeys(db)).find(
    (k) => k.alg === key.alg && k.state === 'staged' && Date.now() >= k.createdAt.getTime() + policy.leadSeconds * 1000,
  );
  if (!ready) {
    throw new AppError(
      'conflict',
      `no staged ${key.alg} key is ready to take over from ${kid}; run \`keys rotate --alg ${key.alg}\` first`,
    );
  }
  await activateKey(db, ready.kid, policy);
  return { activated: ready.kid };
}

/**
 * Emergency: the key leaves JWKS at once and its tokens stop verifying. If it was active, a new key of its
 * algorithm becomes active immediately (no lead time: the compromised key must not sign any longer).
 */
export async function revokeKey(
  db: Kysely<DB>,
  master: Buffer,
  kid: string,
  operator: string,
): Promise<{ replacement: string | null }> {
  const out = await withKeyLock(db, async (trx) => {
    const key = await find(trx, kid);
    if (key.state === 'revoked' || key.state === 'removed')
      throw new AppError('conflict', `key ${kid} is already ${key.state}`);
    await setKeyState(trx, kid, 'revoked');
    if (key.state !== 'active' || !isSigningAlg(key.alg)) return { replacement: null };
    const k = await newKey(master, key.alg);
    await insertKey(trx, { ...k, alg: key.alg, state: 'active', autoActivate: false, operator });
    return { replacement: k.kid };
  });
  await notifyKeysChanged(db);
  return out;
}

/** Stages a new key that activates itself after the lead time (at once when the lead time is 0). */
export async function rotateKey(db: Kysely<DB>, master: Buffer, alg: SigningAlg, policy: KeyPolicy, operator: string) {
  const staged = await generateKey(db, master, alg, operator, true);
  if (policy.leadSeconds > 0)
    return { staged, activated: null, activatesAt: new Date(Date.now() + policy.leadSeconds * 1000) };
  await activateKey(db, staged, policy);
  return { staged, activated: staged, activatesAt: new Date() };
}

/**
 * When the scheduled transition of `k` falls due (epoch ms), or null when it has none: an auto-activating staged
 * key is activated after the lead time, a retired key removed after retention, and an active key without a staged
 * successor gets one after the rotation period. `keys` is the whole set `k` belongs to.
 */
function transitionDueAt(k: SigningKeyRow, keys: SigningKeyRow[], policy: KeyPolicy): number | null {
  if (k.state === 'staged' && k.autoActivate) return k.createdAt.getTime() + policy.leadSeconds * 1000;
  if (k.state === 'retired' && k.retiredAt) return k.retiredAt.getTime() + policy.retentionSeconds * 1000;
  if (
    k.state === 'active' &&
    k.activatedAt &&
    isSigningAlg(k.alg) &&
    !keys.some((s) => s.alg === k.alg && s.state === 'staged')
  )
    return k.activatedAt.getTime() + policy.rotationDays * 86400_000;
  return null;
}

/**
 * The earliest scheduled transition of a key set (epoch ms), or null: until then `runScheduledTransitions` has
 * nothing to do on this set. Every transition changes a key's state, so a set with the same states (the watcher's
 * fingerprint) has the same answer.
 */
function nextTransitionAt(keys: SigningKeyRow[], policy: KeyPolicy): number | null {
  let next: number | null = null;
  for (const k of keys) {
    const due = transitionDueAt(k, keys, policy);
    if (due !== null && (next === null || due < next)) next = due;
  }
  return next;
}

/**
 * The scheduled lifecycle, run by every node; the advisory lock makes exactly one perform each transition:
 * activate auto-activating staged keys past their lead time, remove retired keys past retention, and stage a
 * successor for active keys older than the rotation period.
 */
export async function runScheduledTransitions(db: Kysely<DB>, master: Buffer, policy: KeyPolicy): Promise<string[]> {
  const actions = await tryWithKeyLock(db, async (trx) => {
    const done: string[] = [];
    const now = Date.now();
    const keys = await selectKeys(trx);
    for (const k of keys) {
      const due = transitionDueAt(k, keys, policy);
      if (due === null || now < due) continue;
      if (k.state === 'staged') {
        const current = keys.find((c) => c.alg === k.alg && c.state === 'active');
        if (current) await setKeyState(trx, current.kid, 'retired');
        await setKeyState(trx, k.kid, 'active');
        done.push(`activated ${k.kid}`);
      }
      if (k.state === 'retired') {
        await setKeyState(trx, k.kid, 'removed');
        done.push(`removed ${k.kid}`);
      }
      if (k.state === 'active' && isSigningAlg(k.alg)) {
        const n = await newKey(master, k.alg);
        await insertKey(trx, { ...n, alg: k.alg, state: 'staged', autoActivate: true, operator: 'system' });
        done.push(`staged ${n.kid}`);
      }
    }
    return done;
  });
  if (actions?.length) await notifyKeysChanged(db);
  return actions ?? [];
}

/** Re-seals every private key under a new master key (inside the caller's transaction). */
export async function rewrapKeys(db: Kysely<DB>, from: Buffer, to: Buffer): Promise<number> {
  const keys = await selectKeys(db);
  for (const k of keys) await updateSealed(db, k.kid, seal(to, unseal(from, k.privateJwkSealed, k.kid), k.kid));
  return keys.length;
}
