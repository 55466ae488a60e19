/**
 * The error renderer of everything Koa serves outside oidc-provider (our routes and pages, and the app's last
 * handler: 404, 405): HTML for people, JSON for APIs. Internals are never shown: a 5xx says only "server_error" and
 * the cause is logged with the request id. oidc-provider renders its own endpoints' errors (JSON, a redirect to the
 * portal, or HTML through `renderError` in src/oidc/pages.ts, on the same error page).
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { langOf } from '../oidc/index.ts';
import { errorPage, t } from '../ui/index.ts';

interface HttpishError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  error?: string;
  error_description?: string;
  type?: string;
  message?: string;
  /** Node's error code (zlib's Z_* when a body cannot be decoded). */
  code?: string;
}

function classify(err: unknown): { status: number; code: string; message?: string } {
  if (err instanceof AppError && err.code === 'unavailable') return { status: 503, code: 'temporarily_unavailable' };
  if (err instanceof AppError)
    return { status: err.status, code: err.code, message: err.expose ? err.message : undefined };
  const e = err as HttpishError;
  // A body that cannot be decoded (a content-encoding it does not match): the client's fault, not ours.
  if (typeof e?.code === 'string' && /^Z_/.test(e.code))
    return { status: 400, code: 'invalid_request', message: 'the request body could not be decoded' };
  const status = e?.status ?? e?.statusCode ?? 500;
  if (status >= 500) return { status: 500, code: 'server_error' };
  if (e.type === 'entity.too.large') return { status: 413, code: 'payload_too_large' };
  if (e.error) return { status, code: e.error, message: e.error_description };
  return { status, code: 'invalid_request', message: e.expose ? e.message : undefined };
}

/** Koa middleware that renders any error thrown below it. */
export function errorRenderer(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const { status, code, message } = classify(err);
      if (status === 503) log.warn({ err, reqId: ctx.state.reqId }, 'request failed: database unavailable');
      else if (status >= 500) log.error({ err, reqId: ctx.state.reqId }, 'request failed');
      else log.info({ reqId: ctx.state.reqId, code, status }, 'request rejected');
      ctx.status = status;
      ctx.set('cache-control', 'no-store');
      if (err instanceof AppError && err.retryAfter) ctx.set('retry-after', String(err.retryAfter));
      if (ctx.accepts('json', 'html') === 'html') {
        const lang = langOf(ctx);
        const minutes = String(Math.max(1, Math.ceil(((err as AppError).retryAfter ?? 60) / 60)));
        const text: Record<string, string> = {
          csrf: t(lang, 'csrfFailed'),
          payload_too_large: t(lang, 'requestTooLarge'),
          rate_limited: t(lang, 'tooManyAttempts').replace('{minutes}', minutes),
          temporarily_unavailable: t(lang, 'temporarilyUnavailable'),
        };
        ctx.type = 'html';
        ctx.body = errorPage(lang, code, text[code], ctx.method === 'GET' ? ctx.url : undefined);
      } else {
        ctx.body = { error: code, ...(message ? { error_description: message } : {}) };
      }
    }
  };
}
