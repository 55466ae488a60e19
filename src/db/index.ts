/**
 * The database door: one `pg` code path for the embedded default and an external PostgreSQL.
 */
import { CompiledQuery, Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/index.ts';
import { connectionOptions, POOL_MAX_USES, type PoolOptions } from './connection.ts';
import { startEmbedded } from './embedded.ts';
import type { DB } from './schema.ts';
import { asUnavailable, isAcquireTimeout, isUnavailable, temporarilyUnavailable } from './unavailable.ts';

export { migrateToLatest } from './migrate.ts';
export type { DB, Residence, ResidentTable } from './schema.ts';
export { asUnavailable, isUnavailable, RETRY_AFTER_SECONDS } from './unavailable.ts';

/** An open database: a Kysely instance and how to close it (and the embedded server, if this process owns it). */
export interface Database {
  db: Kysely<DB>;
  /** The pool under `db` (for libraries that take a pg pool, such as the rate limiter). */
  pool: pg.Pool;
  /** Connection URL (contains a password: never log it). */
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

// DATE columns stay 'YYYY-MM-DD' strings: no time-zone shift of birth dates.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

/** When the pool last failed to hand out a connection (saturated, refused, timed out), for readiness. */
interface PoolHealth {
  lastAcquireFailureAt: number;
  lastAcquireFailure: string;
}

const health = new WeakMap<pg.Pool, PoolHealth>();

/**
 * A pg pool for `url`. Every connection has an error handler for its whole life, checked out or idle: a server
 * that ends connections (restart, failover, pg_terminate_backend) never becomes an unhandled 'error' event.
 */
export function createPool(url: string, options: number | PoolOptions = 10): pg.Pool {
  const o = typeof options === 'number' ? { size: options } : options;
  const connectTimeoutMs = o.connectTimeoutMs;
  // pg-pool gives its own connectionTimeoutMillis (the acquire timeout) to each new client; the connect timeout is
  // the client's own.
  class Client extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, ...(connectTimeoutMs ? { connectionTimeoutMillis: connectTimeoutMs } : {}) });
    }
  }
  const pool = new pg.Pool({
    ...connectionOptions(url, o),
    max: o.size ?? 10,
    maxUses: o.maxUses ?? POOL_MAX_USES,
    ...(o.acquireTimeoutMs ? { connectionTimeoutMillis: o.acquireTimeoutMs } : {}),
    Client,
  });
  pool.on('error', () => {}); // an idle client lost its server; the next query reports it
  pool.on('connect', (client) => client.on('error', () => {})); // ... or a checked-out one: the query reports it
  health.set(pool, { lastAcquireFailureAt: 0, lastAcquireFailure: '' });
  return pool;
}

/** The pool's connections: all, idle, and requests waiting for one (metrics read it). */
export function poolStats(pool: pg.Pool): { total: number; idle: number; waiting: number } {
  return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
}

/** The pool's acquire-failure record (readiness reads it). */
export function poolHealth(pool: pg.Pool): PoolHealth {
  let h = health.get(pool);
  if (!h) {
    h = { lastAcquireFailureAt: 0, lastAcquireFailure: '' };
    health.set(pool, h);
  }
  return h;
}

/** Records a failure to get a connection from the pool (saturated, refused, timed out), for readiness. */
function noteAcquireFailure(pool: pg.Pool, err: unknown): void {
  if (!isUnavailable(err)) return;
  const h = poolHealth(pool);
  h.lastAcquireFailureAt = Date.now();
  h.lastAcquireFailure = isAcquireTimeout(err) ? 'saturated' : 'unreachable';
}

/** A connection from the pool; a failure to get one is recorded for readiness and becomes a 503. */
async function acquire(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    noteAcquireFailure(pool, err);
    throw asUnavailable(err);
  }
}

/**
 * The pool as Kysely sees it: database outages become `temporarilyUnavailable` (503), and a connection that failed
 * is destroyed on release instead of going back to the pool (a timed-out query may still be running on it).
 */
function kyselyPool(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await acquire(pool);
      let broken: Error | undefined;
      const query = (...args: unknown[]) => {
        const r = (client.query as (...a: unknown[]) => unknown)(...args);
        if (!(r instanceof Promise)) return r; // a cursor (streaming)
        return r.catch((err: unknown) => {
          if (!isUnavailable(err)) throw err;
          broken = err as Error;
          throw temporarilyUnavailable(err);
        });
      };
      return { query, release: () => client.release(broken) } as unknown as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
}

const pools = new WeakMap<Kysely<DB>, pg.Pool>();

/** Creates a Kysely instance over a pg pool (given, or made for `url`). */
export function connect(url: string | pg.Pool, options: number | PoolOptions = 10): Kysely<DB> {
  const pool = typeof url === 'string' ? createPool(url, options) : url;
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: kyselyPool(pool) }) });
  pools.set(db, pool);
  // Kysely ends the pool only if it ever ran a query of its own (its driver starts lazily). One that only ran
  // prepared statements (runPrepared uses the pool directly: an audit append, a token find) must close it too, or
  // its idle connections keep the process alive for pg-pool's idle timeout (10 s) after `destroy`.
  const destroy = db.destroy.bind(db);
  db.destroy = async () => {
    await destroy();
    if (!pool.ending && !pool.ended) await pool.end();
  };
  return db;
}

/** Rows and affected-row count of a prepared statement. */
interface PreparedResult<R> {
  rows: R[];
  rowCount: number;
}

/**
 * Runs a fixed SQL text as a named prepared statement, straight on the pool: parsed and planned once per
 * connection, and none of Kysely's per-query machinery (measured: ~45 µs of CPU per query against ~120 µs through
 * Kysely). Only for the handful of statements on every token request; everything else is built with Kysely. Inside
 * a transaction (or on a Kysely not made by `connect`) it runs through Kysely instead, on that connection.
 * Names must be unique per text. A pooler in front of PostgreSQL must support protocol-level prepared statements
 * (PgBouncer >= 1.21 with max_prepared_statements set).
 */
export async function runPrepared<R>(
  db: Kysely<DB>,
  name: string,
  text: string,
  values: unknown[],
): Promise<PreparedResult<R>> {
  const pool = db.isTransaction ? undefined : pools.get(db);
  if (pool) {
    // Acquire and query apart: only a failure to get a connection tells readiness the pool is in trouble; a
    // connection that dies under a query (a terminated backend) is destroyed and the next one is fresh.
    const client = await acquire(pool);
    try {
      const r = await client.query<R & pg.QueryResultRow>({ name, text, values });
      client.release();
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    } catch (err) {
      client.release(isUnavailable(err) ? (err as Error) : undefined);
      throw asUnavailable(err);
    }
  }
  const r = await db.executeQuery<R>(CompiledQuery.raw(text, values));
  return { rows: r.rows, rowCount: Number(r.numAffectedRows ?? BigInt(r.rows.length)) };
}

/** Opens the configured database: DATABASE_URL, or the embedded server in DATA_DIR (started or joined). */
export async function openDatabase(
  config: Config,
  onLog?: (line: string) => void,
  options: PoolOptions = {},
): Promise<Database> {
  const o = { size: config.dbPoolSize, ...options };
  if (config.databaseUrl) {
    const pool = createPool(config.databaseUrl, o);
    const db = connect(pool);
    return { db, pool, url: config.databaseUrl, embedded: false, close: () => db.destroy() };
  }
  const server = await startEmbedded(config.dataDir, config.embeddedPgPort, onLog);
  const pool = createPool(server.url, o);
  const db = connect(pool);
  return {
    db,
    pool,
    url: server.url,
    embedded: true,
    close: async () => {
      await db.destroy();
      await server.stop();
    },
  };
}

/** A LISTEN subscription. */
interface Subscription {
  stop(): Promise<void>;
}

/**
 * LISTENs on a PostgreSQL channel with one dedicated connection; `onNotify` runs for each notification, and once
 * after every reconnection (a change may have been missed meanwhile). A lost connection is replaced by exactly one
 * new one, retried with backoff (0.25 s doubling to 5 s) until it succeeds: never two at once, never none for long.
 */
export async function listenChannel(
  url: string,
  channel: string,
  onNotify: () => void,
  onError: (err: unknown) => void,
  options: PoolOptions = {},
): Promise<Subscription> {
  let client: pg.Client | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let delay = 250;
  const config = {
    ...connectionOptions(url, { applicationName: 'dinhdanh-listen', ...options }),
    statement_timeout: undefined,
    query_timeout: undefined,
  };

  const schedule = () => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = null;
      void attempt();
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 5000);
  };

  const attempt = async (): Promise<void> => {
    const c = new pg.Client(config);
    let lost = false;
    const onLost = (err?: unknown) => {
      if (lost) return; // 'error' and 'end' both arrive for one loss
      lost = true;
      if (client === c) client = null;
      if (err) onError(err);
      c.end().catch(() => {});
      schedule();
    };
    c.on('error', onLost);
    c.on('end', () => onLost());
    c.on('notification', () => onNotify());
    try {
      await c.connect();
      await c.query(`listen ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      onLost(err);
      return;
    }
    if (stopped || lost) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    delay = 250;
    onNotify();
  };

  await attempt();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}

export { createProbe, type Probe } from './probe.ts';

/**
 * Deletes the rows of `table` whose `column` is before `cutoff`, `batch` rows per statement along the primary key
 * `id`, until none are left: each statement is its own short transaction, and rows another node is deleting are
 * skipped (no long lock at any size). Returns how many were deleted.
 */
export async function deleteOlderThan(
  db: Kysely<DB>,
  table: 'verification_codes' | 'sms_outbox',
  column: 'expires_at' | 'created_at',
  cutoff: Date,
  batch = 1000,
): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await sql`delete from ${sql.table(table)} where id in (
      select id from ${sql.table(table)} where ${sql.ref(column)} < ${cutoff}
      order by id limit ${batch} for update skip locked)`.execute(db);
    const n = Number(r.numAffectedRows ?? 0);
    total += n;
    if (n < batch) return total;
  }
}
