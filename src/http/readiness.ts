/**
 * Readiness as a load balancer needs it: answered within a second whatever the database does, 503 when this node
 * should get no new traffic. Liveness (`/healthz`) is separate: a node that is alive but not ready must not be
 * restarted, only taken out of rotation.
 */
import type pg from 'pg';
import { type Probe, poolHealth } from '../db/index.ts';

/** The readiness answer: `ready`, or why not. */
export interface Readiness {
  ready: boolean;
  status: 'ready' | 'draining' | 'saturated' | 'unreachable' | 'slow' | 'cannot_write' | 'migrations_pending';
  pendingMigrations?: string[];
}

/** How long after the pool failed to hand out a connection the node still says it is not ready. */
export const POOL_FAILURE_WINDOW_MS = 2000;

/** Builds the readiness check from the node's drain flag, its pool's record and its probe. */
export function readinessCheck(opts: {
  probe: Probe;
  pool: pg.Pool;
  draining: () => boolean;
  now?: () => number;
  /** Hears each change of the answer's status (the first answer included): flapping shows in metrics. */
  onChange?: (status: Readiness['status']) => void;
}): () => Promise<Readiness> {
  const now = opts.now ?? Date.now;
  let last: Readiness['status'] | undefined;
  const check = async (): Promise<Readiness> => {
    if (opts.draining()) return { ready: false, status: 'draining' };
    const h = poolHealth(opts.pool);
    if (h.lastAcquireFailureAt && now() - h.lastAcquireFailureAt < POOL_FAILURE_WINDOW_MS) {
      return { ready: false, status: h.lastAcquireFailure === 'saturated' ? 'saturated' : 'unreachable' };
    }
    const r = await opts.probe.check();
    if (r.ok) return { ready: true, status: 'ready' };
    return { ready: false, status: r.reason, ...(r.pending ? { pendingMigrations: r.pending } : {}) };
  };
  return async () => {
    const r = await check();
    if (r.status !== last) opts.onChange?.(r.status);
    last = r.status;
    return r;
  };
}
