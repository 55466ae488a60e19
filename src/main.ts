/**
 * Wiring: configuration -> database -> keys -> provider -> app -> listen. Nothing else lives here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { Kysely } from 'kysely';
import { type Logger, pino } from 'pino';
import { codeBook, deleteExpiredCodes, secondFactorState } from './accounts/index.ts';
import { createAuditQueue, recordEvent } from './audit/index.ts';
import { ensureFirstPartyClient } from './clients/index.ts';
import type { Config } from './config/index.ts';
import { argon2idHasher, type PasswordHasher } from './credentials/index.ts';
import {
  connect,
  createProbe,
  type DB,
  isUnavailable,
  listenChannel,
  migrateToLatest,
  openDatabase,
} from './db/index.ts';
import { createApp, readinessCheck } from './http/index.ts';
import { accountRoutes, enrollRoutes, interactionRoutes, recoverRoutes } from './interactions/index.ts';
import {
  cookieGeneration,
  deriveCodeKey,
  deriveCookieKeys,
  deriveCsrfSecret,
  derivePairwiseSecret,
  deriveTokenKey,
  ensureActiveKeys,
  keysFingerprint,
  loadKeyMaterial,
  loadMasterKey,
  loadSecretRoot,
  pinPseudonymizer,
  runScheduledTransitions,
} from './keys/index.ts';
import { createLimiter } from './limits/index.ts';
import {
  ACCOUNT_CLIENT_ID,
  auditProviderEvents,
  createProvider,
  deliverDue,
  endExpiredSessions,
  type ProviderHost,
  processTerminations,
  purgeExpired,
  startProviderHost,
  tokenVault,
} from './oidc/index.ts';
import { countResidents } from './registry/index.ts';
import { seedDemo } from './seed/demo.ts';
import { gatewaySender, outboxSender, purgeOutbox } from './sms/index.ts';

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
   * then no new connections; requests in flight finish (up to `timeoutMs`); the audit queue is written; the pool
   * closes. Defaults from SHUTDOWN_GRACE_SECONDS and SHUTDOWN_TIMEOUT_SECONDS.
   */
  close(opts?: { graceMs?: number; timeoutMs?: number }): Promise<void>;
}

/** Creates the JSON logger; secrets are redacted wherever they might appear. */
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    redact: {
      paths: ['password', '*.password', 'client_secret', '*.client_secret', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  });
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

/** Starts one node: opens (or starts) the database, migrates, seeds when asked, listens. */
export async function startService(
  config: Config,
  opts: { log?: Logger; hasher?: PasswordHasher } = {},
): Promise<Service> {
  const log = opts.log ?? createLogger(config);
  const master = loadMasterKey(config);
  const database = await openDatabase(config, (line) => log.debug({ pg: line.trim() }, 'embedded postgres'), {
    ...config.db,
    applicationName: 'dinhdanh',
  });
  // What a failed start must undo, newest first (a listening server, the key watcher, the probe).
  const undo: (() => Promise<unknown>)[] = [];
  try {
    // Migrations may run longer than a request's statement timeout: their own connection, without one.
    const migrator = connect(database.url, { size: 1, connectTimeoutMs: config.db.connectTimeoutMs });
    const applied = await untilDatabaseAnswers(() => migrateToLatest(migrator), log).finally(() => migrator.destroy());
    if (applied.length) log.info({ applied }, 'migrations applied');
    const hasher = opts.hasher ?? (await argon2idHasher(config.argon2));
    const seed =
      config.demoSeed === 'always' ||
      (config.demoSeed === 'auto' && database.embedded && (await countResidents(database.db)) === 0);
    if (seed) log.info(await seedDemo(database.db, hasher), 'demo data seeded');
    const root = await loadSecretRoot(database.db, master);
    const vault = tokenVault(deriveTokenKey(root));
    // Cookie keys rotate with `dinhdanh keys rotate-cookies`; every node picks the new generation up with the key set.
    const currentCookieKeys = async () =>
      config.cookieKeys ?? deriveCookieKeys(root, await cookieGeneration(database.db, master));
    let cookieKeys = await currentCookieKeys();
    let app: ReturnType<typeof createApp> | undefined;
    // Until the app is built, requests get 503 + Retry-After (never a connection left hanging).
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end('{"error":"starting"}');
    };
    // Requests in flight, counted so a graceful stop can wait for them; while draining, every response closes its
    // connection so keep-alive clients move to another node.
    let inFlight = 0;
    let draining = false;
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
    await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
    undo.unshift(() => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    });
    const { port } = server.address() as AddressInfo;
    // PORT=0 (tests): the issuer learns the port the system picked.
    const issuer = config.issuer.replace(/:0$/, `:${port}`);
    await ensureActiveKeys(database.db, master);
    // A database outage is a warning (it is retried and shows on /readyz); anything else is an error.
    const failed = (what: string) => (err: unknown) =>
      isUnavailable(err) ? log.warn({ err: String(err) }, `${what} (database unavailable)`) : log.error({ err }, what);
    const auditQueue = createAuditQueue(database.db, failed('audit write failed (will retry)'));
    undo.unshift(() => auditQueue.close(Date.now() + 1000));
    const host = await startProviderHost({
      load: async () => {
        cookieKeys = await currentCookieKeys();
        return loadKeyMaterial(database.db, master);
      },
      fingerprint: () => keysFingerprint(database.db),
      tick: () => runScheduledTransitions(database.db, master, config.keys),
      listen: (onChange) =>
        listenChannel(
          database.url,
          'dinhdanh_keys',
          onChange,
          (err) => log.warn({ err }, 'key notification channel lost'),
          { connectTimeoutMs: config.db.connectTimeoutMs },
        ),
      intervalMs: config.keys.checkSeconds * 1000,
      onError: failed('key set refresh failed'),
      onSwap: (provider) => {
        // oidc-provider answers its own errors; a 500 it sends is logged here with its cause.
        provider.on('server_error', (ctx, err) => log.error({ err, reqId: ctx.state?.reqId }, 'provider server_error'));
        auditProviderEvents(provider, database.db, auditQueue, (err) =>
          log.error({ err }, 'session device write failed'),
        );
        if (app) app.app.keys = cookieKeys;
        log.info('signing key set loaded');
      },
      build: (signing) =>
        createProvider({
          config: { ...config, issuer },
          db: database.db,
          jwks: signing,
          cookieKeys,
          pairwiseSecret: config.pairwiseSecret ?? derivePairwiseSecret(root),
          tokenVault: vault,
          accountLevel: async (id) => (await secondFactorState(database.db, id))?.level ?? 0,
          onImplicitConsent: async (ctx, clientId, accountId, scope) => {
            await recordEvent(database.db, {
              actor: { type: 'client', id: clientId },
              action: 'consent.implicit',
              outcome: 'success',
              subject: accountId,
              clientId,
              ip: ctx.ip,
              details: { scope },
            });
          },
        }),
    });
    undo.unshift(() => host.stop());
    const pseudonym = pinPseudonymizer(root);
    const csrfSecret = deriveCsrfSecret(root);
    const codeLimiter = createLimiter(database.pool, 'codes', config.loginLimits);
    const codes = codeBook(database.db, deriveCodeKey(root));
    const sms = config.sms ? gatewaySender(config.sms) : outboxSender(database.db, (line) => log.info(line));
    await ensureFirstPartyClient(database.db, {
      clientId: ACCOUNT_CLIENT_ID,
      name: 'Tài khoản định danh (dinhdanh)',
      redirectUris: [`${issuer}/account/callback`],
      postLogoutRedirectUris: [`${issuer}/account`],
    });
    const probe = await createProbe(database.url, `${os.hostname()}:${process.pid}:${port}`);
    undo.unshift(() => probe.close());
    app = createApp({
      host,
      cookieKeys,
      jwksMaxAge: config.keys.jwksMaxAge,
      readiness: readinessCheck({ probe, pool: database.pool, draining: () => draining }),
      log,
      trustProxy: config.trustProxy,
      routers: [
        interactionRoutes({
          host,
          db: database.db,
          hasher,
          csrfSecret,
          loginLimiter: createLimiter(database.pool, 'login', config.loginLimits),
          pseudonym,
          acr: config.acr,
          master,
          codeLimiter,
        }),
        accountRoutes({
          host,
          db: database.db,
          issuer,
          pseudonym,
          hasher,
          master,
          csrfSecret,
          codeLimiter,
          acr: config.acr,
          inPersonValidMs: config.inPersonValidMs,
        }),
        enrollRoutes({
          db: database.db,
          hasher,
          csrfSecret,
          limiter: createLimiter(database.pool, 'enroll', config.loginLimits),
          pseudonym,
          codes,
          sms,
        }),
        recoverRoutes({
          host,
          db: database.db,
          hasher,
          master,
          csrfSecret,
          limiter: createLimiter(database.pool, 'recover', config.loginLimits),
          codeLimiter,
          pseudonym,
          codes,
          sms,
        }),
      ],
    });
    handler = app.listener;
    const purge = setInterval(() => {
      endExpiredSessions(host.current, database.db)
        .then(() => purgeExpired(database.db))
        .then(() => Promise.all([deleteExpiredCodes(database.db), purgeOutbox(database.db)]))
        .catch((err) => log.warn({ err }, 'purge of expired rows failed'));
    }, config.purgeIntervalSeconds * 1000);
    purge.unref();
    // Back-channel deliveries and session terminations, off the request path.
    let working: Promise<unknown> | null = null;
    const worker = setInterval(() => {
      if (working) return;
      working = Promise.all([deliverDue(database.db), processTerminations(host.current, database.db)])
        .catch((err) => log.warn({ err }, 'background work failed'))
        .finally(() => {
          working = null;
        });
    }, config.workerIntervalMs);
    worker.unref();
    let closing: Promise<void> | null = null;
    const stop = async ({
      graceMs = config.shutdown.graceSeconds * 1000,
      timeoutMs = config.shutdown.timeoutSeconds * 1000,
    } = {}) => {
      draining = true;
      log.info({ graceMs, inFlight }, 'draining: /readyz answers 503');
      if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
      const deadline = Date.now() + timeoutMs;
      // No new connections; idle keep-alive connections close now, busy ones after their response.
      const closed = new Promise((r) => server.close(r));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          t.unref();
        });
      }
      if (inFlight > 0) log.warn({ inFlight }, 'shutdown timeout: closing requests still in flight');
      server.closeAllConnections();
      await closed;
      clearInterval(purge);
      clearInterval(worker);
      await working;
      await host.stop();
      const left = await auditQueue.close(Math.max(deadline, Date.now() + 1000));
      if (left) log.error({ left }, 'audit events could not be written before exit');
      await probe.close();
      await database.close();
      log.info('stopped');
    };
    return {
      url: issuer,
      server,
      host,
      db: database.db,
      seeded: seed,
      get draining() {
        return draining;
      },
      close(opts) {
        closing ??= stop(opts);
        return closing;
      },
    };
  } catch (err) {
    for (const f of undo) await f().catch(() => {});
    await database.close();
    throw err;
  }
}
