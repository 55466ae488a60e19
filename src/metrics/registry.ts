/**
 * The Prometheus metric families of one node, on a registry of their own (not prom-client's global one: a test
 * process runs several nodes, and each must count only its own). Counters move through the small recording
 * functions other domains are given; gauges that describe shared state (back-channel backlog, signing keys, the
 * pool, the audit queue) are read at scrape time from `sources`.
 *
 * Label values are bounded: outcomes and grant types are this code's own words, and client ids come only from
 * registered clients (and are capped at MAX_CLIENTS distinct values all the same). No personal data is a label.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** How a login attempt ended (the audit trail has the detail). */
export type LoginOutcome =
  | 'success'
  | 'wrong_password'
  | 'unknown_account'
  | 'malformed_pin'
  | 'account_disabled'
  | 'resident_inactive'
  | 'locked'
  | 'unmet_level'
  | 'wrong_code'
  | 'code_locked';

/** State read when Prometheus scrapes (each read bounded in cost; a read that fails leaves its family empty). */
export interface MetricSources {
  /** Undelivered back-channel logouts (counted up to a bound) and the age of the oldest, in seconds. */
  backchannel?: () => Promise<{ depth: number; oldestAgeSeconds: number }>;
  /** Seconds the oldest event in the audit batch queue has waited (0 when empty). */
  auditLagSeconds?: () => number;
  /** The request pool's connections. */
  pool?: () => { total: number; idle: number; waiting: number };
  /** Published signing keys, with their age in seconds. */
  signingKeys?: () => Promise<{ kid: string; state: string; ageSeconds: number }[]>;
  /** When `audit verify` last found the chain intact (null: never). */
  auditVerifiedAt?: () => Promise<Date | null>;
}

/** What other domains record, and the registry the listener serves. */
export interface Metrics {
  readonly registry: Registry;
  /** One HTTP request served: `route` is a template or a provider route name, never a raw path. */
  request(method: string, route: string, status: number, seconds: number): void;
  /** A password login attempt, or its second step (`level` the level reached or asked; 0 when unknown). */
  login(outcome: LoginOutcome, level: number, client: string): void;
  /** A token endpoint grant that issued tokens. */
  tokenIssued(grantType: string, client: string): void;
  /** A step-up (second factor on an existing session); `code_locked` is a code refused by the lock (429). */
  stepUp(outcome: 'success' | 'wrong_code' | 'code_locked' | 'unmet_level'): void;
  /**
   * An enrollment attempt at `level`: level 1 online (`/enroll`), level 2 at `/account` (a wrong activation code, a
   * wrong TOTP code, `success` when an in-person check becomes level 2, `replaced` when a level-2 session replaces
   * its factor).
   */
  enrollment(level: number, outcome: string): void;
  /** One back-channel logout delivery attempt. */
  backchannelDelivery(outcome: 'delivered' | 'retrying' | 'abandoned'): void;
  /** The node's readiness answer changed to `status` (`ready`, or why not). */
  readinessChanged(status: string): void;
  /** Scrape-time sources; set once the things they read exist. */
  observe(sources: MetricSources): void;
}

/** Distinct client labels kept; more are counted as `other` (registration bounds them; this is the backstop). */
const MAX_CLIENTS = 2000;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
/** Latency buckets in seconds: argon2id logins take 50-300 ms, token requests a few ms. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const version = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
})();

/** prom-client's event-loop delay families, whose values loopDelayWhileBusy gives (same names). */
const LOOP_DELAY = {
  min: (h: IntervalHistogram) => h.min,
  max: (h: IntervalHistogram) => h.max,
  mean: (h: IntervalHistogram) => h.mean,
  stddev: (h: IntervalHistogram) => h.stddev,
  p50: (h: IntervalHistogram) => h.percentile(50),
  p90: (h: IntervalHistogram) => h.percentile(90),
  p99: (h: IntervalHistogram) => h.percentile(99),
};
type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;

/**
 * The event-loop delay (`nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds`, as prom-client names them)
 * sampled every 10 ms while the node serves requests (health checks aside), and not for a minute after the last one.
 * prom-client samples for ever: 100 wakeups a second, about 0.3% of a core of an idle node, to measure a delay no
 * request meets. A coarser period would not do: a value is the whole interval between two samples (10 ms at rest),
 * so the dashboard would read the period as delay. Each scrape reads the period since the last (as prom-client's);
 * 0 when nothing was sampled. Returns what a request calls.
 */
function loopDelayWhileBusy(registry: Registry): () => void {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  let lastRequestAt = 0;
  let sampling = false;
  const stopWhenIdle = () => {
    const quiet = Date.now() - lastRequestAt;
    if (quiet < 60_000) setTimeout(stopWhenIdle, 60_000 - quiet).unref();
    else {
      histogram.disable();
      sampling = false;
    }
  };
  const gauges = Object.keys(LOOP_DELAY).map((field, i) => {
    const name = `nodejs_eventloop_lag_${field}_seconds`;
    registry.removeSingleMetric(name);
    return new Gauge({
      name,
      help: `The ${field} of the event loop delays recorded while requests come (seconds; 0 when none).`,
      registers: [registry],
      // The registry collects in order: the first sets them all, then starts the next period.
      ...(i === 0
        ? {
            collect() {
              const values = Object.values(LOOP_DELAY).map((f) => (histogram.count ? f(histogram) / 1e9 : 0));
              for (const [j, g] of gauges.entries()) g.set(values[j]!);
              histogram.reset();
            },
          }
        : {}),
    });
  });
  return () => {
    lastRequestAt = Date.now();
    if (sampling) return;
    sampling = true;
    histogram.enable();
    setTimeout(stopWhenIdle, 60_000).unref();
  };
}

/** Creates one node's registry with every dinhdanh family and Node's default metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  // Node's defaults, but for the event-loop delay histogram (loopDelayWhileBusy: sampled only while requests come).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 2 ** 31 - 1 });
  const busy = loopDelayWhileBusy(registry);
  let sources: MetricSources = {};
  const clients = new Set<string>();
  const client = (id: string) => {
    if (clients.has(id)) return id;
    if (clients.size >= MAX_CLIENTS) return 'other';
    clients.add(id);
    return id;
  };
  const read = async <T>(f: (() => T | Promise<T>) | undefined): Promise<T | undefined> => {
    try {
      return await f?.();
    } catch {
      return undefined; // the database is down or slow: the family is empty for this scrape
    }
  };

  new Gauge({
    name: 'dinhdanh_build_info',
    help: 'Version of dinhdanh and of Node running it (always 1).',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version, node: process.version }, 1);

  const duration = new Histogram({
    name: 'http_server_request_duration_seconds',
    help: 'Duration of HTTP requests, by method, route template (or provider route name) and status class.',
    labelNames: ['method', 'route', 'status_class'],
    buckets: BUCKETS,
    registers,
  });
  const logins = new Counter({
    name: 'dinhdanh_logins_total',
    help: 'Login attempts by outcome, assurance level and client.',
    labelNames: ['outcome', 'level', 'client'],
    registers,
  });
  const tokens = new Counter({
    name: 'dinhdanh_tokens_issued_total',
    help: 'Successful token endpoint grants by grant type and client.',
    labelNames: ['grant_type', 'client'],
    registers,
  });
  const stepUps = new Counter({
    name: 'dinhdanh_step_up_total',
    help: 'Step-ups to level 2 on an existing session, by outcome.',
    labelNames: ['outcome'],
    registers,
  });
  const enrollments = new Counter({
    name: 'dinhdanh_enrollments_total',
    help: 'Enrollment attempts by level and outcome.',
    labelNames: ['level', 'outcome'],
    registers,
  });
  const deliveries = new Counter({
    name: 'dinhdanh_backchannel_deliveries_total',
    help: 'Back-channel logout delivery attempts by outcome.',
    labelNames: ['outcome'],
    registers,
  });
  new Gauge({
    name: 'dinhdanh_backchannel_queue_depth',
    help: 'Back-channel logouts not yet delivered nor abandoned (counted up to 10000).',
    registers,
    async collect() {
      const b = await read(sources.backchannel);
      this.reset();
      if (b) this.set(b.depth);
    },
  });
  new Gauge({
    name: 'dinhdanh_backchannel_oldest_age_seconds',
    help: 'Age of the oldest back-channel logout waiting for delivery (0 when none).',
    registers,
    async collect() {
      const b = await read(sources.backchannel);
      this.reset();
      if (b) this.set(b.oldestAgeSeconds);
    },
  });
  new Gauge({
    name: 'dinhdanh_audit_batch_lag_seconds',
    help: 'How long the oldest event in the audit batch queue has waited to be written (0 when empty).',
    registers,
    async collect() {
      const lag = await read(sources.auditLagSeconds);
      this.reset();
      if (lag !== undefined) this.set(lag);
    },
  });
  for (const [field, help] of [
    ['total', 'Connections in the request pool.'],
    ['idle', 'Idle connections in the request pool.'],
    ['waiting', 'Requests waiting for a connection from the pool.'],
  ] as const) {
    new Gauge({
      name: `dinhdanh_db_pool_${field}`,
      help,
      registers,
      async collect() {
        const p = await read(sources.pool);
        this.reset();
        if (p) this.set(p[field]);
      },
    });
  }
  new Gauge({
    name: 'dinhdanh_signing_key_age_seconds',
    help: 'Age of each published signing key (staged, active, retired), since it was generated.',
    labelNames: ['kid', 'state'],
    registers,
    async collect() {
      const keys = await read(sources.signingKeys);
      this.reset();
      for (const k of keys ?? []) this.set({ kid: k.kid, state: k.state }, k.ageSeconds);
    },
  });

  new Gauge({
    name: 'dinhdanh_audit_last_verified_timestamp_seconds',
    help: 'When `audit verify` last found the hash chain intact (Unix time; 0 when never), read from its audit event.',
    registers,
    async collect() {
      const at = await read(sources.auditVerifiedAt);
      this.reset();
      if (at !== undefined) this.set(at ? at.getTime() / 1000 : 0);
    },
  });
  const readiness = new Counter({
    name: 'dinhdanh_readiness_changes_total',
    help: 'Changes of the readiness answer, by the status changed to (ready, draining, saturated, unreachable, ...).',
    labelNames: ['status'],
    registers,
  });

  return {
    registry,
    request(method, route, status, seconds) {
      if (route !== '/readyz' && route !== '/healthz') busy();
      const m = METHODS.has(method) ? method : '_OTHER';
      duration.observe({ method: m, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
    },
    login(outcome, level, clientId) {
      logins.inc({ outcome, level: String(level), client: client(clientId) });
    },
    tokenIssued(grantType, clientId) {
      tokens.inc({ grant_type: grantType || 'unknown', client: client(clientId) });
    },
    stepUp(outcome) {
      stepUps.inc({ outcome });
    },
    enrollment(level, outcome) {
      enrollments.inc({ level: String(level), outcome });
    },
    backchannelDelivery(outcome) {
      deliveries.inc({ outcome });
    },
    readinessChanged(status) {
      readiness.inc({ status });
    },
    observe(s) {
      sources = { ...sources, ...s };
    },
  };
}
