/**
 * The readiness probe: can this node use its database right now? It runs on its own connection, never in the
 * request pool's queue, and answers within its deadline whatever the database does (a paused server, a held lock,
 * a saturated pool). One statement checks three things: the server answers, it can commit a write (a full disk or
 * a read-only standby fails here) and every migration this code expects is applied.
 */
import pg from 'pg';
import { connectionOptions } from './connection.ts';
import { expectedMigrations } from './migrate.ts';

/** What the probe found. */
export type ProbeResult =
  | { ok: true }
  | { ok: false; reason: 'unreachable' | 'slow' | 'cannot_write' | 'migrations_pending'; pending?: string[] };

export interface Probe {
  /** Runs one check (concurrent callers share it); resolves within the deadline. */
  check(): Promise<ProbeResult>;
  close(): Promise<void>;
}

const WRITE = `
with stale as (delete from readiness_probe where checked_at < now() - interval '1 hour' and node <> $1),
     mark as (insert into readiness_probe (node, checked_at) values ($1, now())
              on conflict (node) do update set checked_at = excluded.checked_at returning 1)
select (select count(*) from mark)::int as wrote, array(select name from kysely_migration) as applied`;

/** Starts a probe for the node `node` against `url`; `deadlineMs` bounds each check (connecting included). */
export async function createProbe(url: string, node: string, deadlineMs = 800): Promise<Probe> {
  const expected = await expectedMigrations();
  const config = {
    ...connectionOptions(url, { applicationName: 'dinhdanh-probe', connectTimeoutMs: deadlineMs }),
    statement_timeout: deadlineMs,
  };
  let client: pg.Client | null = null;
  let running: Promise<ProbeResult> | null = null;

  const drop = (c: pg.Client | null) => {
    if (client === c) client = null;
    c?.end().catch(() => {});
  };

  async function run(): Promise<ProbeResult> {
    let c = client;
    try {
      if (!c) {
        c = new pg.Client(config);
        const mine = c;
        c.on('error', () => drop(mine));
        client = c;
        await c.connect();
      }
      const r = await c.query<{ wrote: number; applied: string[] }>(WRITE, [node]);
      const applied = new Set(r.rows[0]?.applied ?? []);
      const pending = expected.filter((m) => !applied.has(m));
      return pending.length ? { ok: false, reason: 'migrations_pending', pending } : { ok: true };
    } catch (err) {
      drop(c);
      const code = String((err as { code?: unknown }).code ?? '');
      if (code === '42P01') return { ok: false, reason: 'migrations_pending', pending: expected };
      if (/^(53100|25006|58)/.test(code)) return { ok: false, reason: 'cannot_write' };
      if (code === '57014') return { ok: false, reason: 'slow' };
      return { ok: false, reason: 'unreachable' };
    }
  }

  function withDeadline(): Promise<ProbeResult> {
    let timer: NodeJS.Timeout | undefined;
    const c = client;
    const late = new Promise<ProbeResult>((resolve) => {
      timer = setTimeout(() => {
        drop(client ?? c); // a query may still be waiting on it: start afresh next time
        resolve({ ok: false, reason: 'slow' });
      }, deadlineMs);
    });
    return Promise.race([run(), late]).finally(() => clearTimeout(timer));
  }

  return {
    check() {
      running ??= withDeadline().finally(() => {
        running = null;
      });
      return running;
    },
    async close() {
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
