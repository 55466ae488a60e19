/**
 * The Koa application that hosts everything: security headers, request logging, errors, health, static files,
 * interaction pages and, last, oidc-provider mounted at the root.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Router from '@koa/router';
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import Koa, { type Context, type Next } from 'koa';
import mount from 'koa-mount';
import { errors } from 'oidc-provider';
import type { Logger } from 'pino';
import { RETRY_AFTER_SECONDS } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { cookieSigner } from '../keys/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { commitRequest, discardRequest, inRequestScope, type ProviderHost, publicDocument } from '../oidc/index.ts';
import {
  type DocumentSource,
  documentHeaders,
  documentResponder,
  type PublicDocument,
  requestId,
} from './documents.ts';
import { errorRenderer } from './errors.ts';
import type { Readiness } from './readiness.ts';
import { PLAIN_HEADERS, SECURE_HEADERS } from './security-headers.ts';

/** What the app needs. */
export interface AppDeps {
  /** The current provider (swapped when signing keys change) and its JWKS document. */
  host: ProviderHost;
  cookieKeys: string[];
  jwksMaxAge: number;
  /** Readiness for load balancers (`/readyz`). */
  readiness: () => Promise<Readiness>;
  log: Logger;
  trustProxy: boolean;
  routers: Router[];
  /** Request durations are recorded here (by route template); absent in tests that do not look. */
  metrics?: Metrics;
}

const css = readFileSync(new URL('../../static/app.css', import.meta.url));

/**
 * The route a request matched, as a template: oidc-provider's route name (`authorization`, `token`, ...), else the
 * pattern our routers matched (`/interaction/:uid/login`), else `unmatched`. Never the raw path (unbounded, and it
 * may hold an interaction id).
 */
function routeOf(ctx: Context): string {
  const oidcRoute = (ctx as { oidc?: { route?: string } }).oidc?.route;
  if (oidcRoute) return oidcRoute;
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
}

/**
 * Records each request's duration by method, route template and status class; with tracing on, names the HTTP
 * server span by the same route (semantic conventions: `{method} {http.route}`, set through the span's RPC metadata).
 */
function requestMetrics(metrics: Metrics | undefined) {
  return async (ctx: Context, next: Next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      const route = routeOf(ctx);
      const rpc = getRPCMetadata(context.active());
      if (rpc?.type === RPCType.HTTP) rpc.route = route;
      // An error thrown past this point still answers (Koa's default handler): 500 unless it says otherwise.
      metrics?.request(ctx.method, route, ctx.status, (performance.now() - start) / 1000);
    }
  };
}

/** One JSON log line per request; the path without its query (which may hold codes or tokens). */
function requestLog(log: Logger) {
  return async (ctx: Context, next: Next) => {
    const start = process.hrtime.bigint();
    ctx.state.reqId = requestId(ctx.get('x-request-id'));
    ctx.set('x-request-id', ctx.state.reqId);
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      log.info(
        {
          reqId: ctx.state.reqId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          ms: Math.round(ms * 10) / 10,
        },
        'request',
      );
    }
  };
}

/** Sends a pre-serialized public document (or 304 when the portal's copy is current). */
function sendDocument(ctx: Context, doc: PublicDocument, contentType: string, maxAge: number): void {
  const { 'content-type': type, ...headers } = documentHeaders(contentType, doc.etag, maxAge);
  ctx.set(headers);
  if (ctx.get('if-none-match') === doc.etag) {
    ctx.status = 304;
    return;
  }
  ctx.type = type;
  ctx.body = doc.body;
}

function healthRoutes(readiness: () => Promise<Readiness>, host: ProviderHost, jwksMaxAge: number): Router {
  const r = new Router();
  // JWKS: staged, active and retired public keys, pre-serialized; portals revalidate with If-None-Match.
  r.get('/jwks', (ctx) => {
    sendDocument(ctx, host.jwks(), 'application/jwk-set+json; charset=utf-8', jwksMaxAge);
  });
  // Liveness: the event loop answers. Never depends on the database (a restart would not help it).
  r.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  r.get('/readyz', async (ctx) => {
    const { ready, status, pendingMigrations } = await readiness();
    ctx.status = ready ? 200 : 503;
    ctx.set('cache-control', 'no-store');
    ctx.body = {
      status,
      database: ready || status === 'draining' || status === 'migrations_pending' ? 'ok' : status,
      pendingMigrations: pendingMigrations ?? [],
    };
  });
  r.get('/static/app.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.body = css;
  });
  return r;
}

/** The Koa app and the request listener to give Node's http server (documents first, then Koa). */
export interface HttpApp {
  app: Koa;
  listener: (req: IncomingMessage, res: ServerResponse) => void;
}

/** True when every URL in a discovery document is at the issuer's origin. */
function atIssuer(doc: object, issuer: string): boolean {
  const origin = new URL(issuer).origin;
  return Object.values(doc).every(
    (v) => typeof v !== 'string' || !/^https?:\/\//.test(v) || new URL(v).origin === origin,
  );
}

/**
 * Endpoints that exist but answer only some methods (RFC 9110 15.5.6: 405 with Allow, not 404): the published
 * documents (GET, HEAD) and the back-channel endpoints (POST: token, PAR (RFC 9126 2.3), introspection, revocation).
 */
const METHODS = new Map([
  ['/jwks', 'GET, HEAD'],
  ['/.well-known/openid-configuration', 'GET, HEAD'],
  ['/token', 'POST'],
  ['/request', 'POST'],
  ['/token/introspection', 'POST'],
  ['/token/revocation', 'POST'],
]);

/** Endpoints of oidc-provider called by portals and APIs, not by browsers: none of our routers answers them. */
export const PROVIDER_PATHS = ['/token', '/token/introspection', '/token/revocation', '/me', '/request'];

/** Builds the Koa app and its request listener. */
export function createApp({
  host,
  cookieKeys,
  jwksMaxAge,
  readiness,
  log,
  trustProxy,
  routers,
  metrics,
}: AppDeps): HttpApp {
  const app = new Koa();
  // Discovery, pre-serialized once per provider instance (it changes only with the key set), with an ETag.
  const discovery = new WeakMap<object, PublicDocument>();
  const documents: DocumentSource = { discovery: () => discovery.get(host.current), jwks: () => host.jwks() };
  app.proxy = trustProxy;
  // Behind one trusted proxy: the client IP is the last X-Forwarded-For entry it added, not one the client wrote.
  app.maxIpsCount = 1;
  // koa-mount runs the provider's middleware in this app's context: cookies must be signed with the same keys.
  app.keys = cookieSigner(cookieKeys);
  app.silent = true; // errors are logged by errorRenderer
  app.use(requestMetrics(metrics));
  app.use(requestLog(log));
  // Security headers (helmet's, computed once); HSTS only over https.
  app.use((ctx, next) => {
    ctx.set(ctx.secure ? SECURE_HEADERS : PLAIN_HEADERS);
    return next();
  });
  // Every 503 (database outage, draining, the provider's temporarily_unavailable) tells the client when to retry.
  app.use(async (ctx, next) => {
    await next();
    if (ctx.status === 503 && !ctx.response.get('retry-after')) ctx.set('retry-after', String(RETRY_AFTER_SECONDS));
  });
  app.use(errorRenderer(log));
  // A language chosen with ?lang= is remembered on every page, not only on the one that offered the switch.
  app.use((ctx, next) => {
    const lang = ctx.query.lang;
    if (lang === 'vi' || lang === 'en')
      ctx.cookies.set('lang', lang, {
        httpOnly: true,
        sameSite: 'lax',
        secure: ctx.secure,
        maxAge: 31536e6,
        signed: false,
      });
    return next();
  });
  // The provider is looked up per request: a key change swaps it without dropping requests in flight.
  const mounted = new WeakMap<object, Koa.Middleware>();
  const toProvider = (ctx: Context, next: Next) => {
    const provider = host.current;
    let m = mounted.get(provider);
    if (!m) {
      m = mount(provider as unknown as Koa);
      mounted.set(provider, m);
    }
    return m(ctx as never, next);
  };
  // What nothing answered: 405 with Allow where the path exists for other methods, else 404.
  const unanswered = (ctx: Context) => {
    const allow = METHODS.get(ctx.path);
    if (allow) {
      ctx.set('allow', allow);
      throw new AppError('method_not_allowed', `${ctx.method} is not allowed here`);
    }
    throw new AppError('not_found', 'no such page');
  };
  // The provider's back-channel endpoints (token, introspection, revocation, userinfo, PAR) go to it at once, past our
  // routers: only those where no router has a route or middleware (checked here, per path, when the app is built),
  // so the answer is the one the routers would have passed on, and a token request does not test every route
  // pattern of every router first. Everything above (headers, request id and log, metrics, errors) still runs.
  const all = [healthRoutes(readiness, host, jwksMaxAge), ...routers];
  const bypass = new Set(
    PROVIDER_PATHS.filter((p) => all.every((r) => !r.match(p, 'GET').path.length && !r.match(p, 'POST').path.length)),
  );
  // Each in a request scope of the storage adapter (adapter.ts): a token's grant and account read with it serve the
  // request's own lookups, and a token request's consume and new tokens are written together, committed here before
  // the answer leaves (a consume that lost to another request: invalid_grant, nothing written; the database down: 503).
  // An error after the consume (thrown, or answered by the library) drops what the request held back: the code or
  // refresh token stays usable for the client's next try.
  const providerRequest = async (ctx: Context) => {
    try {
      await toProvider(ctx, async () => unanswered(ctx));
    } catch (err) {
      await discardRequest();
      throw err;
    }
    if (ctx.status >= 400) await discardRequest();
    else if (!(await commitRequest())) throw new errors.InvalidGrant('grant request is invalid');
  };
  app.use((ctx, next) => (bypass.has(ctx.path) ? inRequestScope(() => providerRequest(ctx)) : next()));
  for (const r of all) app.use(r.routes()).use(r.allowedMethods());
  // Discovery: the provider builds it once per instance; later requests get the stored copy (also served by
  // the document responder before Koa).
  app.use(async (ctx, next) => {
    if (ctx.path !== '/.well-known/openid-configuration' || ctx.method !== 'GET') return next();
    const provider = host.current;
    const doc = discovery.get(provider);
    if (!doc) {
      await next();
      // oidc-provider builds the URLs from the request's host: only a document whose every URL is at the issuer's
      // origin is kept for everyone (a forged Host or X-Forwarded-Host gets its own answer, never cached).
      if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object' && atIssuer(ctx.body, provider.issuer)) {
        discovery.set(provider, publicDocument(ctx.body));
      }
      return;
    }
    sendDocument(ctx, doc, 'application/json; charset=utf-8', jwksMaxAge);
  });
  app.use(toProvider);
  app.use(unanswered);
  const koa = app.callback();
  const serveDocument = documentResponder(documents, jwksMaxAge, trustProxy, log);
  return {
    app,
    listener: (req, res) => {
      const start = performance.now();
      // Answered before Koa: the path is one of the two documents' (a template already).
      if (serveDocument(req, res))
        metrics?.request('GET', req.url ?? '', res.statusCode, (performance.now() - start) / 1000);
      else void koa(req, res);
    },
  };
}
