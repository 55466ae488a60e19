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
}

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
