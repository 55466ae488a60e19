/**
 * Brute-force protection for secrets a person types (password now; TOTP and activation codes reuse it), with
 * rate-limiter-flexible's PostgreSQL store so that every node counts the same attempts.
 *
 * Per key (a pseudonym of the personal ID, whether or not an account exists, so a lock reveals nothing): each failure
 * adds a growing delay; after `maxFailures` the key is locked for `lockSeconds`, doubling with each lock in a day,
 * capped at 24 h; never permanent. Per IP: a looser limit (many citizens share a commune office's address).
 * Officers unlock a key.
 */

import type pg from 'pg';
import { RateLimiterPostgres, type RateLimiterRes } from 'rate-limiter-flexible';
import { asUnavailable } from '../db/index.ts';

/** Limits for one kind of secret. */
export interface LimitPolicy {
  /** Consecutive failures before a lock (default 5). */
  maxFailures: number;
  /** First lock duration in seconds (default 900); doubles for each further lock within 24 h. */
  lockSeconds: number;
  /** Failures allowed per IP per 15 minutes (default 100). */
  ipFailures: number;
}

/**
 * What a caller does around each attempt: `reserve` before checking the secret (it counts the attempt as a failure
 * up front, atomically, so parallel requests cannot all pass a check-then-act gap), then `succeed` (refund) or `fail`.
 */
export interface Limiter {
  /** Counts an attempt in advance; returns 0 when it may proceed, else the seconds the key or IP stays locked. */
  reserve(key: string, ip: string): Promise<number>;
  /** Completes a failed attempt; returns the delay to apply now and, if this failure caused a lock, its length. */
  fail(key: string, ip: string): Promise<{ delayMs: number; lockedFor: number }>;
  /** Clears the key's consecutive failures (after a success), refunding the reservation. */
  succeed(key: string): Promise<void>;
  /** Clears every counter and lock of the key (officer action). */
  unlock(key: string): Promise<void>;
}

export const DEFAULT_POLICY: LimitPolicy = { maxFailures: 5, lockSeconds: 900, ipFailures: 100 };

const DAY = 86400;

/** A limiter named `kind` (login, totp, activation) over the `rate_limits` table. */
export function createLimiter(pool: pg.Pool, kind: string, policy: LimitPolicy = DEFAULT_POLICY): Limiter {
  const base = {
    storeClient: pool,
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    clearExpiredByTimeout: false,
  };
  const failures = new RateLimiterPostgres({
    ...base,
    keyPrefix: `${kind}:key`,
    points: policy.maxFailures,
    duration: DAY,
  });
  const locks = new RateLimiterPostgres({ ...base, keyPrefix: `${kind}:lock`, points: 1, duration: 1 });
  const lockCount = new RateLimiterPostgres({ ...base, keyPrefix: `${kind}:locks`, points: 1000, duration: DAY });
  const perIp = new RateLimiterPostgres({
    ...base,
    keyPrefix: `${kind}:ip`,
    points: policy.ipFailures,
    duration: 900,
    blockDuration: 900,
  });

  /** Seconds left when `r` has consumed more than `limit` points. */
  const remaining = (r: RateLimiterRes | null, limit: number) =>
    r && r.consumedPoints > limit ? Math.max(1, Math.ceil(r.msBeforeNext / 1000)) : 0;

  /** Locks the key once for this run of failures; the lock grows with each lock in a day. */
  async function lock(key: string): Promise<number> {
    // Atomic claim: of parallel callers only the first sets (and counts) the lock.
    const claim = await locks.penalty(key, 1);
    if (claim.consumedPoints > 1) return Math.max(1, Math.ceil(claim.msBeforeNext / 1000));
    const count = (await lockCount.penalty(key, 1)).consumedPoints;
    const lockedFor = Math.min(policy.lockSeconds * 2 ** (count - 1), DAY);
    await locks.set(key, 1, lockedFor);
    await failures.delete(key);
    return lockedFor;
  }

  return unavailableOnOutage({
    async reserve(key, ip) {
      const [lockRes, ipRes] = await Promise.all([locks.get(key), perIp.get(ip)]);
      const blocked = Math.max(remaining(lockRes, 0), remaining(ipRes, policy.ipFailures));
      if (blocked) return blocked; // refused without counting: attempts during a lock never prolong the next one
      const n = (await failures.penalty(key, 1)).consumedPoints;
      // Look again after counting: a lock is set before the count is reset (see `lock`), so an attempt that looked
      // before the lock and counted after the reset sees it here instead of slipping through (seen with 12 parallel
      // attempts on a busy machine). Its point is given back.
      const locked = remaining(await locks.get(key), 0);
      if (locked) {
        await failures.reward(key, 1);
        return locked;
      }
      return n > policy.maxFailures ? lock(key) : 0;
    },
    async fail(key, ip) {
      const ipRes = await perIp.penalty(ip, 1);
      if (ipRes.consumedPoints > policy.ipFailures) await perIp.block(ip, 900);
      const n = (await failures.get(key))?.consumedPoints ?? policy.maxFailures;
      const delayMs = Math.min(250 * 2 ** (Math.max(n, 1) - 1), 4000);
      if (n < policy.maxFailures) return { delayMs, lockedFor: 0 };
      return { delayMs, lockedFor: await lock(key) };
    },
    async succeed(key) {
      await failures.delete(key);
    },
    async unlock(key) {
      await Promise.all([failures.delete(key), locks.delete(key), lockCount.delete(key)]);
    },
  });
}

/** The limiter's store is the database: its outages are 503s like every other query's. */
function unavailableOnOutage(limiter: Limiter): Limiter {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(limiter) as [string, (...a: unknown[]) => Promise<unknown>][]) {
    wrapped[name] = (...args: unknown[]) =>
      fn(...args).catch((err: unknown) => {
        throw asUnavailable(err);
      });
  }
  return wrapped as unknown as Limiter;
}
