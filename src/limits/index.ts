/**
 * Brute-force protection for secrets a person types (password now; TOTP and activation codes reuse it), with
 * rate-limiter-flexible's PostgreSQL store so that every node counts the same attempts.
 *
 * Per key (a pseudonym of the personal ID, whether or not an account exists, so a lock reveals nothing): each failure
 * adds a growing delay; after `maxFailures` the key is locked for `lockSeconds`, doubling with each lock in a day,
 * capped at 24 h; never permanent. Per IP: a limit on the number of distinct keys that failed from it in 15
 * minutes (many citizens share a commune office's or a carrier's address; a stuffing client tries many keys).
 * Officers unlock a key.
 */

import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { RateLimiterPostgres, type RateLimiterRes } from 'rate-limiter-flexible';
import { asUnavailable } from '../db/index.ts';

/** Limits for one kind of secret. */
interface LimitPolicy {
  /** Consecutive failures before a lock (default 5). */
  maxFailures: number;
  /** First lock duration in seconds (default 900); doubles for each further lock within 24 h. */
  lockSeconds: number;
  /** Distinct keys that may fail from one IP per 15 minutes (default 100). */
  ipFailures: number;
}

/**
 * What a caller does around each attempt: `reserve` before checking the secret, then exactly one of `fail`,
 * `succeed` or `release`. Checks of one key run one at a time across all nodes (a lease in PostgreSQL; others wait
 * for it, briefly), and each failure is counted when it happens: parallel requests cannot get more than
 * `maxFailures` checks past a lock, and a correct login is never counted as a failure, however many run at once.
 */
export interface Limiter {
  /** Waits for this key's turn; returns 0 when the check may proceed, else the seconds to wait (locked, busy). */
  reserve(key: string, ip: string): Promise<number>;
  /** Completes a failed check; returns the delay to apply now and, if this failure caused a lock, its length. */
  fail(key: string, ip: string): Promise<{ delayMs: number; lockedFor: number }>;
  /** Completes a successful check: the key's consecutive failures are cleared. */
  succeed(key: string): Promise<void>;
  /** Completes an attempt that was no guess (malformed input): nothing counted, nothing cleared. */
  release(key: string): Promise<void>;
  /** Clears every counter and lock of the key, and of every device key derived from it (officer action). */
  unlock(key: string): Promise<void>;
}

/** The policy when none is given (the LOGIN_* defaults). */
const DEFAULT_POLICY: LimitPolicy = { maxFailures: 5, lockSeconds: 900, ipFailures: 100 };

const DAY = 86400;
/**
 * A lease outlives a check (argon2id and a few queries take well under a second). One whose holder died, or whose
 * release was lost to a database outage, expires after this: shorter than WAIT_MS, so a lost lease delays the next
 * attempt but never refuses it. (A check slower than this, on a stalled database, may overlap the next one: at most
 * one extra check, never a bypass of the lock.)
 */
const LEASE_SECONDS = 5;
/** How long an attempt waits for its key's turn before it is answered 429 (Retry-After 1). */
const WAIT_MS = 10_000;
/** Attempts of one key waiting on one node at most; more are answered 429 at once. */
const MAX_WAITING = 20;

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
  // Which keys already failed from an IP in the window: the IP limit counts distinct keys, not attempts.
  const ipKeys = new RateLimiterPostgres({ ...base, keyPrefix: `${kind}:ipkey`, points: 1_000_000, duration: 900 });
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

  // The lease: one check per key at a time. `holders` remembers this node's lease per key (only one request in the
  // whole cluster holds a key's lease, so one entry per key suffices).
  const holders = new Map<string, string>();
  const waiting = new Map<string, number>();
  const acquire = async (key: string): Promise<boolean> => {
    const holder = randomUUID();
    const r = await pool.query(
      `insert into attempt_leases (key, holder, until) values ($1, $2, now() + interval '${LEASE_SECONDS} seconds')
       on conflict (key) do update set holder = excluded.holder, until = excluded.until
       where attempt_leases.until < now() returning holder`,
      [`${kind}:${key}`, holder],
    );
    if (r.rows[0]?.holder !== holder) return false;
    holders.set(key, holder);
    return true;
  };
  const releaseLease = async (key: string) => {
    const holder = holders.get(key);
    if (!holder) return;
    holders.delete(key);
    await pool.query('delete from attempt_leases where key = $1 and holder = $2', [`${kind}:${key}`, holder]);
  };
  const blockedFor = async (key: string, ip: string) => {
    const [lockRes, ipRes] = await Promise.all([locks.get(key), perIp.get(ip)]);
    return Math.max(remaining(lockRes, 0), remaining(ipRes, policy.ipFailures));
  };

  return unavailableOnOutage({
    async reserve(key, ip) {
      const blocked = await blockedFor(key, ip);
      if (blocked) return blocked; // refused without a check: attempts during a lock never prolong it
      // A crowd on one key (a script, not a citizen with two tabs) is refused at once rather than queued.
      if ((waiting.get(key) ?? 0) >= MAX_WAITING) return 1;
      waiting.set(key, (waiting.get(key) ?? 0) + 1);
      try {
        const deadline = Date.now() + WAIT_MS;
        for (let pause = 20; !(await acquire(key)); pause = Math.min(pause * 2, 200)) {
          if (Date.now() > deadline) return 1;
          await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
        }
      } finally {
        const n = (waiting.get(key) ?? 1) - 1;
        if (n) waiting.set(key, n);
        else waiting.delete(key);
      }
      // The check before ours may have locked the key.
      const locked = remaining(await locks.get(key), 0);
      if (locked) {
        await releaseLease(key);
        return locked;
      }
      return 0;
    },
    async fail(key, ip) {
      try {
        // Per IP, count the personal IDs that failed, not the failures: a commune office or a carrier's NAT where
        // many citizens each mistype a few times stays open; one client trying many IDs (stuffing) is stopped.
        if ((await ipKeys.penalty(`${ip}|${key}`, 1)).consumedPoints === 1) {
          const ipRes = await perIp.penalty(ip, 1);
          if (ipRes.consumedPoints > policy.ipFailures) await perIp.block(ip, 900);
        }
        const n = (await failures.penalty(key, 1)).consumedPoints;
        const delayMs = Math.min(250 * 2 ** (Math.max(n, 1) - 1), 4000);
        if (n < policy.maxFailures) return { delayMs, lockedFor: 0 };
        return { delayMs, lockedFor: await lock(key) };
      } finally {
        await releaseLease(key);
      }
    },
    async succeed(key) {
      try {
        await failures.delete(key);
      } finally {
        await releaseLease(key);
      }
    },
    release: releaseLease,
    async unlock(key) {
      await Promise.all([failures.delete(key), locks.delete(key), lockCount.delete(key)]);
      // And every browser's own key for it (device cookies: `${key}:device:${nonce}`).
      await pool.query(
        `delete from rate_limits where starts_with(key, $1) or starts_with(key, $2) or starts_with(key, $3)`,
        ['key', 'lock', 'locks'].map((p) => `${kind}:${p}:${key}:device:`),
      );
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
