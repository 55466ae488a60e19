/**
 * What "the database cannot answer now" looks like, and the one error the rest of the code sees for it.
 *
 * A restart, a failover, a paused server, a full disk, `max_connections` reached or a statement past its timeout are
 * transient: the caller should retry in a few seconds, against this node or another. They become one `AppError`
 * with code `unavailable` (HTTP 503 with Retry-After; OAuth error `temporarily_unavailable`), never a 500.
 * Everything else (a constraint violation, a bug) is left as it is.
 */
import { AppError } from '../errors.ts';

/** Seconds a caller is asked to wait before retrying after a database outage. */
export const RETRY_AFTER_SECONDS = 5;

// Socket-level failures reported by Node.
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

// SQLSTATEs: 08 connection exception, 53 insufficient resources (disk full, out of memory, too many connections),
// 57P operator intervention (admin/crash shutdown, starting up), 58 system error (I/O), 57014 statement timeout or
// cancel, 55P03 lock timeout, 25P03 idle-in-transaction timeout, 25006 read-only (a standby after a failover).
const SQLSTATE = /^(08|53|57P|58)|^(57014|55P03|25P03|25006)$/;

// Errors pg and pg-pool raise without a code.
const MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|timeout expired|Query read timeout|Client has encountered a connection error|not queryable|Client was closed|Cannot use a pool after calling end/i;

/** True when `err` means the database is unreachable, slow or saturated (retryable), not that the request is wrong. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof AppError) return err.code === 'unavailable';
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || SQLSTATE.test(e.code))) return true;
  return typeof e.message === 'string' && MESSAGES.test(e.message);
}

/** True when `err` is pg-pool giving up waiting for a connection (the pool is saturated or cannot connect). */
export function isAcquireTimeout(err: unknown): boolean {
  return err instanceof Error && /timeout exceeded when trying to connect|timeout expired/i.test(err.message);
}

/** The error for a database outage: 503, OAuth `temporarily_unavailable`, the cause kept for the log. */
export function temporarilyUnavailable(cause: unknown): AppError {
  const err = new AppError('unavailable', 'temporarily_unavailable', {
    expose: true,
    cause,
    retryAfter: RETRY_AFTER_SECONDS,
  });
  // Read by oidc-provider's error handlers (the OAuth error body) and by Koa.
  Object.assign(err, {
    error: 'temporarily_unavailable',
    error_description: 'the service is temporarily unavailable; retry in a few seconds',
  });
  return err;
}

/** `err` as `temporarilyUnavailable` when it is a database outage, else unchanged. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof AppError) return err;
  return isUnavailable(err) ? temporarilyUnavailable(err) : err;
}
