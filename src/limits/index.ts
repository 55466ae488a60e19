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
import { RateLimiterPostgres } from 'rate-limiter-flexible';
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
  /** Seconds a `rate_limits` row (points, expire in epoch ms; rate-limiter-flexible's format) still blocks, or 0. */
  const rowBlocks = (points: number | null, expire: string | null, limit: number) =>
    points !== null && points > limit
      ? Math.max(1, Math.ceil((expire === null ? 0 : Number(expire) - Date.now()) / 1000))
      : 0;
  /**
   * Takes the key's lease unless the key is locked or the IP blocked, in one statement (one round trip where
   * reading the lock, the IP's block and taking the lease took three): the seconds it is blocked for, or whether the
   * lease is now ours (false: another check holds it). The rows are rate-limiter-flexible's (`<prefix>:<key>`), read
   * as its `get` reads them.
   */
  const acquire = async (key: string, ip: string): Promise<{ blocked: number; acquired: boolean }> => {
    const holder = randomUUID();
    const r = await pool.query<{
      lock_points: number | null;
      lock_expire: string | null;
      ip_points: number | null;
      ip_expire: string | null;
      holder: string | null;
    }>({
      name: 'limits-acquire',
      text: `with state as (
        select max(points) filter (where key = $1) as lock_points, max(expire) filter (where key = $1) as lock_expire,
          max(points) filter (where key = $2) as ip_points, max(expire) filter (where key = $2) as ip_expire
        from rate_limits where key in ($1, $2) and (expire > $3 or expire is null)
      ), lease as (
        insert into attempt_leases (key, holder, until)
        select $4, $5, now() + interval '${LEASE_SECONDS} seconds' from state
        where coalesce(lock_points, 0) <= 0 and coalesce(ip_points, 0) <= $6
        on conflict (key) do update set holder = excluded.holder, until = excluded.until
        where attempt_leases.until < now() returning holder
      )
      select state.*, (select holder from lease) as holder from state`,
      values: [`${kind}:lock:${key}`, `${kind}:ip:${ip}`, Date.now(), `${kind}:${key}`, holder, policy.ipFailures],
    });
    const row = r.rows[0]!;
    const blocked = Math.max(
      rowBlocks(row.lock_points, row.lock_expire, 0),
      rowBlocks(row.ip_points, row.ip_expire, policy.ipFailures),
    );
    if (blocked || row.holder !== holder) return { blocked, acquired: false };
    holders.set(key, holder);
    return { blocked: 0, acquired: true };
  };
  /**
   * Ends this node's lease of `key`. After a check that locked the key, the row stays, expired as of now, instead of
   * being deleted: the next check can take it only in a transaction that starts later, so its snapshot holds the
   * lock. (A deleted row would let a check whose statement began before the lock was committed take the lease with a
   * view that misses the lock.)
   */
  const releaseLease = async (key: string, locked = false) => {
    const holder = holders.get(key);
    if (!holder) return;
    holders.delete(key);
    await pool.query({
      name: locked ? 'limits-release-locked' : 'limits-release',
      text: locked
        ? 'update attempt_leases set until = now() where key = $1 and holder = $2'
        : 'delete from attempt_leases where key = $1 and holder = $2',
      values: [`${kind}:${key}`, holder],
    });
  };

  return unavailableOnOutage({
    async reserve(key, ip) {
      // Refused without a check while locked or blocked: attempts during a lock never prolong it.
      let attempt = await acquire(key, ip);
      if (attempt.blocked) return attempt.blocked;
      if (!attempt.acquired) {
        // A crowd on one key (a script, not a citizen with two tabs) is refused at once rather than queued.
        if ((waiting.get(key) ?? 0) >= MAX_WAITING) return 1;
        waiting.set(key, (waiting.get(key) ?? 0) + 1);
        try {
          const deadline = Date.now() + WAIT_MS;
          for (let pause = 20; !attempt.acquired; pause = Math.min(pause * 2, 200)) {
            if (Date.now() > deadline) return 1;
            await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
            attempt = await acquire(key, ip);
            if (attempt.blocked) return attempt.blocked;
          }
        } finally {
          const n = (waiting.get(key) ?? 1) - 1;
          if (n) waiting.set(key, n);
          else waiting.delete(key);
        }
      }
      // The lock was read in the statement that took the lease: a check that locks the key releases its lease as
      // expired from after the lock's commit (releaseLease), so a lease taken later comes with a view that holds it.
      return 0;
    },
    async fail(key, ip) {
      let locking = false;
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
        locking = true;
        return { delayMs, lockedFor: await lock(key) };
      } finally {
        await releaseLease(key, locking);
      }
    },
    async succeed(key) {
      // The key's consecutive failures cleared and the lease released in one statement.
      const holder = holders.get(key);
      if (!holder) return void (await failures.delete(key));
      holders.delete(key);
      await pool.query({
        name: 'limits-succeed',
        text: `with cleared as (delete from rate_limits where key = $1)
          delete from attempt_leases where key = $2 and holder = $3`,
        values: [`${kind}:key:${key}`, `${kind}:${key}`, holder],
      });
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
