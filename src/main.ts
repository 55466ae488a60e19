/// <reference lib="esnext.disposable" />
/**
 * Wiring: configuration -> database -> keys -> provider -> app -> listen. Nothing else lives here.
 *
 * Start-up is one ordered list of steps (STARTUP_STEPS). Each acquires one thing and registers its release on one
 * AsyncDisposableStack: a step that fails releases everything acquired before it, newest first, and its own error is
 * the one thrown. A graceful stop drains the HTTP server, then releases through the same stack.
 */
import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import type { Kysely } from 'kysely';
import type { JWK } from 'oidc-provider';
import { type Logger, pino } from 'pino';
import { codeBook, deleteExpiredCodes, secondFactorState } from './accounts/index.ts';
import { adminApiRoutes } from './admin/api.ts';
import { consoleRoutes } from './admin/console.ts';
import { openApiRoutes } from './admin/openapi.ts';
import {
  type AuditQueue,
  createAuditQueue,
  lastVerifiedAt,
  maintainAuditPartitions,
  recordEvent,
} from './audit/index.ts';
import { CLIENT_CHANGES_CHANNEL, ensureFirstPartyClient, forgetCachedClients } from './clients/index.ts';
import type { Config } from './config/index.ts';
import { argon2idHasher, type PasswordHasher } from './credentials/index.ts';
import {
  connect,
  createProbe,
  type Database,
  type DB,
  isUnavailable,
  listenChannel,
  migrateToLatest,
  openDatabase,
  type Probe,
  poolStats,
} from './db/index.ts';
import { createApp, readinessCheck } from './http/index.ts';
import { accountRoutes, enrollRoutes, homeRoutes, interactionRoutes, recoverRoutes } from './interactions/index.ts';
import {
  cookieGeneration,
  cookieSigner,
  deriveCodeKey,
  deriveCookieKeys,
  deriveCsrfSecret,
  derivePairwiseSecret,
  deriveTokenKey,
  ensureActiveKeys,
  keysFingerprint,
  listKeys,
  loadKeyMaterial,
  loadMasterKey,
  loadSecretRoot,
  pinPseudonymizer,
  runScheduledTransitions,
} from './keys/index.ts';
import { createLimiter } from './limits/index.ts';
import { createMetrics, type Metrics, startMetricsServer } from './metrics/index.ts';
import {
  ACCOUNT_CLIENT_ID,
  auditProviderEvents,
  backchannelBacklog,
  CONSOLE_CLIENT_ID,
  countProviderEvents,
  createProvider,
  deliverDue,
  endExpiredSessions,
  type ProviderHost,
  processTerminations,
  purgeExpired,
  STAFF_TOOL_CLIENT_ID,
  startProviderHost,
  tokenVault,
} from './oidc/index.ts';
import { countResidents } from './registry/index.ts';
import { seedDemo } from './seed/demo.ts';
import { ensureTestCitizens, isTestCitizen } from './seed/sandbox.ts';
import { gatewaySender, outboxSender, purgeOutbox } from './sms/index.ts';
import { useTimeZone } from './ui/index.ts';

/** A running dinhdanh node. */
export interface Service {
  url: string;
  server: Server;
  /** The current provider (swapped when signing keys change) and the JWKS document. */
  host: ProviderHost;
  db: Kysely<DB>;
  seeded: boolean;
  /** True from the first shutdown signal on: `/readyz` says 503 and responses close their connections. */
  readonly draining: boolean;
  /**
   * Graceful stop: `/readyz` turns 503 at once; requests keep being served for `graceMs` (the load balancer notices);
   * then no new connections; requests in flight finish (up to `timeoutMs`); then everything start-up acquired is
   * released, newest first (timers, probe, key watcher, the audit queue written, the pool closed). Defaults from
   * SHUTDOWN_GRACE_SECONDS and SHUTDOWN_TIMEOUT_SECONDS.
   */
  close(opts?: { graceMs?: number; timeoutMs?: number }): Promise<void>;
}

/** The start-up steps, in the order `startService` runs them (it checks). */
export const STARTUP_STEPS = [
  'master key',
  'database', // release: close the pool (and stop the embedded server this process started)
  'migrations', // on their own connection, closed by the step
  'password hasher',
  'demo seed',
  'secrets',
  'http server', // listening, 503 until 'serve'; release: close every connection
  'signing keys',
  'audit queue', // release: write what is queued
  'metrics', // the registry, and its listener when METRICS_PORT is set; release: close the listener
  'provider host', // provider and key watcher (timer, LISTEN connection); release: stop both
  'client watcher', // LISTEN connection: cached clients forgotten when one changes; release: stop it
  'first-party client',
  'readiness probe', // release: close its connection
  'app',
  'serve',
  'purge timer', // release: clear, wait for the run in flight
  'background worker', // release: clear, wait for the run in flight
] as const;

/** One start-up step's name. */
export type StartupStep = (typeof STARTUP_STEPS)[number];

/** Options of `startService`. */
export interface StartOptions {
  log?: Logger;
  /** Password hasher (flow tests inject a fast one); default argon2id with the configured cost. */
  hasher?: PasswordHasher;
  /** Tests only: the named step throws once it has run (its release registered), as a failure at its end would. */
  failAt?: StartupStep;
}

/** Creates the JSON logger; secrets are redacted wherever they might appear. */
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    redact: {
      paths: ['password', '*.password', 'client_secret', '*.client_secret', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
    // With tracing on (src/telemetry.ts), every line logged inside a request carries its trace: logs and traces join.
    mixin() {
      const span = trace.getActiveSpan()?.spanContext();
      return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
    },
  });
}

/** Starts one node: opens (or starts) the database, migrates, seeds when asked, listens. */
export async function startService(config: Config, opts: StartOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger(config);
  useTimeZone(config.timeZone); // pages show times in the service's time zone
  const stack = new AsyncDisposableStack();
  const step = stepRunner(opts.failAt);
  try {
    const master = await step('master key', () => loadMasterKey(config));
    const database = await step('database', () => openDb(config, log, stack));
    await step('migrations', () => migrate(config, database.url, log));
    const hasher = await step('password hasher', () => opts.hasher ?? argon2idHasher(config.argon2));
    const seeded = await step('demo seed', () => seedWhenAsked(config, database, hasher, log));
    const secrets = await step('secrets', () => loadSecrets(config, database.db, master));
    const door = await step('http server', () => openDoor(config, log, stack));
    // PORT=0 (tests): the issuer learns the port the system picked.
    const node: Wiring = { config, log, master, database, hasher, secrets, issuer: issuerOf(config, door.port) };
    await step('signing keys', () => ensureActiveKeys(database.db, master));
    const audit = await step('audit queue', () => startAuditQueue(node, () => door.deadline, stack));
    const metrics = await step('metrics', () => startMetrics(node, audit, stack));
    const host = await step('provider host', () => startHost(node, audit, metrics, stack));
    await step('client watcher', () => watchClients(node, stack));
    await step('first-party client', () => ensureFirstPartyClients(database.db, node.issuer));
    const probe = await step('readiness probe', () => openProbe(database.url, door.port, stack));
    const app = await step('app', () => buildApp(node, host, probe, () => door.draining, metrics));
    await step('serve', () => door.serve(app.listener));
    await step('purge timer', () => every(config.purgeIntervalSeconds * 1000, purge(host, database.db), log, stack));
    await step('background worker', () => every(config.workerIntervalMs, work(host, database.db, metrics), log, stack));
    return runningService({ config, log, database, seeded, door, host, issuer: node.issuer, stack });
  } catch (err) {
    log.error({ err, step: step.current }, 'start-up failed; releasing what it acquired');
    await stack.disposeAsync().catch((e: unknown) => log.error({ err: e }, 'release after a failed start failed'));
    throw err;
  }
}

/** Runs the named steps, checking they come in STARTUP_STEPS order; `failAt` (tests) makes one throw at its end. */
function stepRunner(failAt: StartupStep | undefined) {
  let next = 0;
  const step = async <T>(name: StartupStep, run: () => T | Promise<T>): Promise<T> => {
    if (STARTUP_STEPS[next++] !== name) throw new Error(`start-up step "${name}" is out of order`);
    step.current = name;
    const value = await run();
    if (failAt === name) throw new Error(`injected failure at start-up step "${name}"`);
    return value;
  };
  step.current = '' as StartupStep | '';
  return step;
}

/** What the steps acquired that later steps need. */
interface Wiring {
  config: Config;
  log: Logger;
  master: Buffer;
  database: Database;
  hasher: PasswordHasher;
  secrets: Secrets;
  issuer: string;
}

/** A database outage is a warning (it is retried and shows on /readyz); anything else is an error. */
const reportFailure = (log: Logger, what: string) => (err: unknown) =>
  isUnavailable(err) ? log.warn({ err: String(err) }, `${what} (database unavailable)`) : log.error({ err }, what);

const issuerOf = (config: Config, port: number) => config.issuer.replace(/:0$/, `:${port}`);

// --- the steps ---

async function openDb(config: Config, log: Logger, stack: AsyncDisposableStack): Promise<Database> {
  const database = await openDatabase(config, (line) => log.debug({ pg: line.trim() }, 'embedded postgres'), {
    ...config.db,
    applicationName: 'dinhdanh',
  });
  stack.defer(() => database.close());
  return database;
}

/** How long a starting node waits for an unreachable database before it gives up (exit 1). */
const STARTUP_WAIT_MS = 60_000;

/**
 * Runs `fn`, retrying with backoff while the database is unreachable (a node started during a database restart or
 * failover waits for it instead of exiting at once); any other error, or an outage past STARTUP_WAIT_MS, is thrown.
 */
async function untilDatabaseAnswers<T>(fn: () => Promise<T>, log: Logger): Promise<T> {
  const deadline = Date.now() + STARTUP_WAIT_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isUnavailable(err) || Date.now() + delay > deadline) throw err;
      log.warn({ err: String(err), retryInMs: delay }, 'database not reachable yet; waiting');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Migrations may run longer than a request's statement timeout: their own connection, without one. */
async function migrate(config: Config, url: string, log: Logger): Promise<void> {
  const migrator = connect(url, { size: 1, connectTimeoutMs: config.db.connectTimeoutMs });
  try {
    const applied = await untilDatabaseAnswers(() => migrateToLatest(migrator), log);
    if (!applied.length) return;
    log.info({ applied }, 'migrations applied');
    await recordEvent(migrator, {
      actor: { type: 'system' },
      action: 'database.migrated',
      outcome: 'success',
      details: { applied, by: 'start' },
    });
  } finally {
    await migrator.destroy();
  }
}

async function seedWhenAsked(config: Config, database: Database, hasher: PasswordHasher, log: Logger) {
  const seed =
    config.demoSeed === 'always' ||
    (config.demoSeed === 'auto' && database.embedded && (await countResidents(database.db)) === 0);
  if (!seed) return false;
  // The seed and its audit event commit together (nothing is recorded when everything was there already).
  const created = await database.db.transaction().execute(async (trx) => {
    const r = await seedDemo(trx, hasher);
    if (r.residents || r.account || r.client)
      await recordEvent(trx, { actor: { type: 'system' }, action: 'demo.seeded', outcome: 'success', details: r });
    return r;
  });
  log.info(created, 'demo data seeded');
  return true;
}

/** The secret root (sealed by the master key, in the database) and the cookie keys. */
interface Secrets {
  root: Buffer;
  cookies: CookieKeys;
}

/**
 * Cookie signing keys: COOKIE_KEYS, or derived from the root at the current generation (`dinhdanh keys
 * rotate-cookies`). Every node reads them again with each key set load; the app signs with the keys of the provider
 * it serves.
 */
interface CookieKeys {
  readonly current: string[];
  reload(): Promise<void>;
  /** Gives `current` to the app (remembered from its first call on), at each provider swap. */
  apply(app?: { keys: unknown }): void;
}

async function loadSecrets(config: Config, db: Kysely<DB>, master: Buffer): Promise<Secrets> {
  const root = await loadSecretRoot(db, master);
  let current: string[] = [];
  let target: { keys: unknown } | undefined;
  const cookies: CookieKeys = {
    get current() {
      return current;
    },
    async reload() {
      current = config.cookieKeys ?? deriveCookieKeys(root, await cookieGeneration(db, master));
    },
    apply(app) {
      target = app ?? target;
      if (target) target.keys = cookieSigner(current);
    },
  };
  await cookies.reload();
  return { root, cookies };
}

/** The HTTP server and the requests it has in flight. */
interface Door {
  server: Server;
  port: number;
  readonly draining: boolean;
  /** When a graceful stop must be over (epoch ms; 0 until one starts). */
  readonly deadline: number;
  /** From now on requests go to `listener` (the app). */
  serve(listener: RequestListener): void;
  /** Serves `graceMs` more while draining, stops accepting, waits for requests in flight until `timeoutMs` after. */
  drain(graceMs: number, timeoutMs: number): Promise<void>;
}

/**
 * Listens before the app exists (the issuer needs the port): until `serve`, requests get 503 + Retry-After, never a
 * connection left hanging. Requests in flight are counted so a graceful stop can wait for them; while draining,
 * every response closes its connection so keep-alive clients move to another node.
 */
async function openDoor(config: Config, log: Logger, stack: AsyncDisposableStack): Promise<Door> {
  let handler: RequestListener = (_req, res) => {
    res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
    res.end('{"error":"starting"}');
  };
  let inFlight = 0;
  let draining = false;
  let deadline = 0;
  let idle: (() => void) | null = null;
  const server = createServer((req, res) => {
    inFlight++;
    if (draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
    handler(req, res);
  });
  // Longer than load balancers' and clients' idle timeouts: a reused keep-alive socket is never closed under a request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(config.port, config.host);
  await once(server, 'listening');
  server.on('error', (err) => log.error({ err }, 'http server error'));
  stack.defer(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    get draining() {
      return draining;
    },
    get deadline() {
      return deadline;
    },
    serve(listener) {
      handler = listener;
    },
    async drain(graceMs, timeoutMs) {
      draining = true;
      log.info({ graceMs, inFlight }, 'draining: /readyz answers 503');
      if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
      deadline = Date.now() + timeoutMs;
      // No new connections; idle keep-alive connections close now, busy ones after their response.
      const closed = new Promise((r) => server.close(r));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, Math.max(0, deadline - Date.now())).unref();
        });
      }
      if (inFlight > 0) log.warn({ inFlight }, 'shutdown timeout: closing requests still in flight');
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The batching audit writer; its release writes what is queued, until the stop's deadline (at least 1 s more). */
function startAuditQueue(n: Wiring, deadline: () => number, stack: AsyncDisposableStack): AuditQueue {
  const queue = createAuditQueue(n.database.db, reportFailure(n.log, 'audit write failed (will retry)'));
  stack.defer(async () => {
    const left = await queue.close(Math.max(deadline(), Date.now() + 1000));
    if (left) n.log.error({ left }, 'audit events could not be written before exit');
  });
  return queue;
}

/**
 * The metrics registry (counting from now on) and, when METRICS_PORT is set, its own listener; scrape-time gauges
 * read the back-channel backlog, the audit queue, the pool and the signing keys. Off: no registry, nothing counted.
 */
async function startMetrics(n: Wiring, audit: AuditQueue, stack: AsyncDisposableStack): Promise<Metrics | undefined> {
  if (!n.config.metrics) return undefined;
  const { db, pool } = n.database;
  const metrics = createMetrics();
  metrics.observe({
    backchannel: () => backchannelBacklog(db),
    auditLagSeconds: () => audit.lagSeconds,
    pool: () => poolStats(pool),
    signingKeys: async () =>
      (await listKeys(db))
        .filter((k) => k.state === 'staged' || k.state === 'active' || k.state === 'retired')
        .map((k) => ({ kid: k.kid, state: k.state, ageSeconds: (Date.now() - k.createdAt.getTime()) / 1000 })),
    auditVerifiedAt: () => lastVerifiedAt(db),
  });
  const { host, port } = n.config.metrics;
  const server = await startMetricsServer(metrics, host, port, (err) => n.log.error({ err }, 'metrics listener error'));
  stack.defer(() => server.close());
  n.log.info({ host, port: server.port }, 'metrics listening');
  return metrics;
}

/** Forgets cached clients when one changes (`clients update`, `rotate-secret`): every node sees it at once. */
async function watchClients(n: Wiring, stack: AsyncDisposableStack): Promise<void> {
  const watch = await listenChannel(
    n.database.url,
    CLIENT_CHANGES_CHANNEL,
    forgetCachedClients,
    (err) => n.log.warn({ err }, 'client notification channel lost'),
    { connectTimeoutMs: n.config.db.connectTimeoutMs },
  );
  stack.defer(() => watch.stop());
}

/** The provider, rebuilt whenever the signing keys change (a timer and a LISTEN connection watch them). */
async function startHost(
  n: Wiring,
  audit: AuditQueue,
  metrics: Metrics | undefined,
  stack: AsyncDisposableStack,
): Promise<ProviderHost> {
  const { config, log, master, secrets } = n;
  const { db, url } = n.database;
  const host = await startProviderHost({
    load: async () => {
      await secrets.cookies.reload();
      // With the policy: the host learns when the next scheduled transition is due, and ticks only then.
      return loadKeyMaterial(db, master, config.keys);
    },
    fingerprint: () => keysFingerprint(db),
    tick: () => runScheduledTransitions(db, master, config.keys),
    listen: (onChange) =>
      listenChannel(url, 'dinhdanh_keys', onChange, (err) => log.warn({ err }, 'key notification channel lost'), {
        connectTimeoutMs: config.db.connectTimeoutMs,
      }),
    intervalMs: config.keys.checkSeconds * 1000,
    onError: reportFailure(log, 'key set refresh failed'),
    onSwap: (provider) => {
      // oidc-provider answers its own errors; a 500 it sends is logged here with its cause.
      provider.on('server_error', (ctx, err) => log.error({ err, reqId: ctx.state?.reqId }, 'provider server_error'));
      auditProviderEvents(provider, db, audit, (err) => log.error({ err }, 'session device write failed'));
      if (metrics) countProviderEvents(provider, metrics);
      secrets.cookies.apply();
      log.info('signing key set loaded');
    },
    build: (signing) => buildProvider(n, signing),
  });
  stack.defer(() => host.stop());
  return host;
}

function buildProvider(n: Wiring, signing: JWK[]) {
  const { config, database, secrets } = n;
  const db = database.db;
  return createProvider({
    config: { ...config, issuer: n.issuer },
    db,
    jwks: signing,
    cookieKeys: secrets.cookies.current,
    pairwiseSecret: config.pairwiseSecret ?? derivePairwiseSecret(secrets.root),
    tokenVault: tokenVault(deriveTokenKey(secrets.root)),
    accountLevel: async (id) => (await secondFactorState(db, id))?.level ?? 0,
    isTestCitizen: (id) => isTestCitizen(db, id),
    onImplicitConsent: async (ctx, clientId, accountId, scope) => {
      await recordEvent(db, {
        actor: { type: 'client', id: clientId },
        action: 'consent.implicit',
        outcome: 'success',
        subject: accountId,
        clientId,
        ip: ctx.ip,
        details: { scope },
      });
    },
  });
}

/** The account pages' and the staff console's own clients, registered for this issuer. */
async function ensureFirstPartyClients(db: Kysely<DB>, issuer: string): Promise<void> {
  await ensureFirstPartyClient(db, {
    clientId: ACCOUNT_CLIENT_ID,
    name: 'Tài khoản định danh (dinhdanh)',
    redirectUris: [`${issuer}/account/callback`],
    postLogoutRedirectUris: [`${issuer}/account`],
  });
  await ensureFirstPartyClient(db, {
    clientId: CONSOLE_CLIENT_ID,
    name: 'Bảng điều khiển cán bộ (dinhdanh)',
    redirectUris: [`${issuer}/admin/callback`],
    postLogoutRedirectUris: [`${issuer}/admin`],
  });
  await ensureFirstPartyClient(db, {
    clientId: STAFF_TOOL_CLIENT_ID,
    name: 'Công cụ cán bộ (dinhdanh)',
    redirectUris: ['http://127.0.0.1/callback'],
    postLogoutRedirectUris: [],
    applicationType: 'native',
  });
}

/** The readiness probe, on its own connection. */
async function openProbe(url: string, port: number, stack: AsyncDisposableStack): Promise<Probe> {
  const probe = await createProbe(url, `${os.hostname()}:${process.pid}:${port}`);
  stack.defer(() => probe.close());
  return probe;
}

/** The Koa app with its limiters and routes. */
function buildApp(n: Wiring, host: ProviderHost, probe: Probe, draining: () => boolean, metrics?: Metrics) {
  const { config, log, master, hasher, secrets, issuer } = n;
  const { db, pool } = n.database;
  const { acr, inPersonValidMs } = config;
  const pseudonym = pinPseudonymizer(secrets.root);
  const csrfSecret = deriveCsrfSecret(secrets.root);
  const limiter = (kind: string) => createLimiter(pool, kind, config.loginLimits);
  const codeLimiter = limiter('codes');
  const codes = codeBook(db, deriveCodeKey(secrets.root));
  // Wrong SMS codes: 5 per code; one IP failing on 20 different codes in 15 minutes is blocked (code guessing).
  const smsCodeLimiter = createLimiter(pool, 'smscode', { maxFailures: 5, lockSeconds: 900, ipFailures: 20 });
  const sms = config.sms ? gatewaySender(config.sms) : outboxSender(db, (line) => log.info(line));
  const app = createApp({
    host,
    cookieKeys: secrets.cookies.current,
    jwksMaxAge: config.keys.jwksMaxAge,
    readiness: readinessCheck({ probe, pool, draining, onChange: metrics && ((s) => metrics.readinessChanged(s)) }),
    log,
    trustProxy: config.trustProxy,
    metrics,
    routers: [
      homeRoutes(),
      interactionRoutes({
        host,
        db,
        hasher,
        csrfSecret,
        loginLimiter: limiter('login'),
        pseudonym,
        acr,
        master,
        codeLimiter,
        // Failed passkey assertions: their own counter, never the password's lockout.
        passkeyLimiter: limiter('passkey'),
        metrics,
      }),
      accountRoutes({
        host,
        db,
        issuer,
        pseudonym,
        hasher,
        master,
        csrfSecret,
        codeLimiter,
        passwordLimiter: limiter('pwchange'),
        acr,
        inPersonValidMs,
        metrics,
      }),
      enrollRoutes({
        db,
        hasher,
        csrfSecret,
        limiter: limiter('enroll'),
        pseudonym,
        codes,
        sms,
        smsCodeLimiter,
        metrics,
      }),
      consoleRoutes({
        host,
        db,
        issuer,
        csrfSecret,
        acr,
        master,
        hasher,
        keys: config.keys,
        production: config.env === 'production',
        pseudonym,
        loginLimiter: limiter('login'),
        timeZone: config.timeZone,
      }),
      recoverRoutes({
        host,
        db,
        hasher,
        master,
        csrfSecret,
        limiter: limiter('recover'),
        codeLimiter,
        smsCodeLimiter,
        pseudonym,
        codes,
        sms,
      }),
      adminApiRoutes({
        host,
        issuer,
        acts: { db, master, keys: config.keys, production: config.env === 'production' },
        pseudonym,
        unlockLogin: (key) => limiter('login').unlock(key),
        level2Acr: acr.level2,
        acrLevels: acr.levels,
        timeZone: config.timeZone,
        ensureTestCitizens: async () => {
          await ensureTestCitizens(db, hasher, master);
        },
      }),
      openApiRoutes(issuer),
    ],
  });
  secrets.cookies.apply(app.app);
  return app;
}

/**
 * Runs `job` every `ms`, off the request path; a run still going skips its turn. The release stops the timer and
 * waits for the run in flight.
 */
function every(ms: number, job: Job, log: Logger, stack: AsyncDisposableStack): void {
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    running ??= job
      .run()
      .catch((err) => log.warn({ err }, job.failure))
      .finally(() => {
        running = null;
      });
  }, ms);
  timer.unref();
  stack.defer(async () => {
    clearInterval(timer);
    await running;
  });
}

/** Periodic work and the warning logged when a run fails. */
interface Job {
  run(): Promise<unknown>;
  failure: string;
}

/**
 * Deletes expired protocol rows: sessions past their lifetime, codes, tokens, one-time codes, sent SMS; and creates
 * the coming months' audit partitions (one catalog read when they exist).
 */
const purge = (host: ProviderHost, db: Kysely<DB>): Job => ({
  run: () =>
    endExpiredSessions(host.current, db)
      .then(() => purgeExpired(db))
      .then(() => Promise.all([deleteExpiredCodes(db), purgeOutbox(db), maintainAuditPartitions(db)])),
  failure: 'purge of expired rows failed',
});

/** Back-channel deliveries and session terminations, off the request path. */
const work = (host: ProviderHost, db: Kysely<DB>, metrics?: Metrics): Job => ({
  run: () =>
    Promise.all([
      deliverDue(db, { onOutcome: metrics && ((o) => metrics.backchannelDelivery(o)) }),
      processTerminations(host.current, db),
    ]),
  failure: 'background work failed',
});

// --- running ---

function runningService(p: {
  config: Config;
  log: Logger;
  database: Database;
  seeded: boolean;
  door: Door;
  host: ProviderHost;
  issuer: string;
  stack: AsyncDisposableStack;
}): Service {
  const { config, log, door } = p;
  const stop = async ({
    graceMs = config.shutdown.graceSeconds * 1000,
    timeoutMs = config.shutdown.timeoutSeconds * 1000,
  } = {}) => {
    await door.drain(graceMs, timeoutMs);
    await p.stack.disposeAsync();
    log.info('stopped');
  };
  let closing: Promise<void> | null = null;
  return {
    url: p.issuer,
    server: door.server,
    host: p.host,
    db: p.database.db,
    seeded: p.seeded,
    get draining() {
      return door.draining;
    },
    close(opts) {
      closing ??= stop(opts);
      return closing;
    },
  };
}
