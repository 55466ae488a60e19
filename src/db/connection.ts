/** How dinhdanh connects to PostgreSQL: the options every pool, probe and listener connection gets. */
import type pg from 'pg';

/** Timeouts and identity of a pool's connections (all in milliseconds; 0 or absent: none). */
export interface PoolOptions {
  size?: number;
  /** Longest wait for a connection from the pool, opening one included (pg-pool's connectionTimeoutMillis). */
  acquireTimeoutMs?: number;
  /** Longest wait for PostgreSQL to accept a new connection. */
  connectTimeoutMs?: number;
  /** Server-side statement_timeout; the client also gives up 1 s later (a paused server never answers). */
  statementTimeoutMs?: number;
  /** Server-side idle_in_transaction_session_timeout: a transaction left open never holds its locks for long. */
  idleInTransactionTimeoutMs?: number;
  /** application_name, to tell a node's connections apart in pg_stat_activity. */
  applicationName?: string;
  /**
   * A pool's connection is closed after this many checkouts (default POOL_MAX_USES) and replaced when next needed.
   * Why: PostgreSQL keeps each prepared statement's generic plan for the connection's life. One made while
   * `oidc_payloads` was tiny (a first deployment, a restored database) scans the whole table, and stays until the
   * next ANALYZE while the table grows: measured 0.05 -> 24 ms per token find at 200,000 rows, and a half-peak refresh
   * run that collapsed to 2 s per request. A new connection plans for the table as it is.
   */
  maxUses?: number;
}

/** Checkouts per pool connection before it is replaced (see PoolOptions.maxUses): one reconnect (a few ms) per 2,000
 * statements. */
export const POOL_MAX_USES = 2000;

/** Options for a `pg.Client` or `pg.Pool` from PoolOptions. */
export function connectionOptions(url: string, o: PoolOptions = {}): pg.ClientConfig {
  return {
    connectionString: url,
    application_name: o.applicationName ?? 'dinhdanh',
    // Detects a peer that vanished without a reset (a failed-over host).
    keepAlive: true,
    ...(o.connectTimeoutMs ? { connectionTimeoutMillis: o.connectTimeoutMs } : {}),
    ...(o.statementTimeoutMs
      ? { statement_timeout: o.statementTimeoutMs, query_timeout: o.statementTimeoutMs + 1000 }
      : {}),
    ...(o.idleInTransactionTimeoutMs ? { idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs } : {}),
  };
}
