/**
 * Discovery and JWKS straight from Node's http server, before Koa. Every portal and every OIDC library fetches these
 * two documents; they change only with the key set, so they are served pre-serialized with their full header block,
 * and a portal revalidating with If-None-Match gets 304. Anything else (HEAD, a query string, a document not built
 * yet) is left to Koa, which serves the same document with the same headers.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { PLAIN_HEADERS, SECURE_HEADERS } from './security-headers.ts';

/** A public JSON document, ready to send. */
export interface PublicDocument {
  body: string;
  etag: string;
}

/** Where the two documents come from; `undefined` while one is not ready. */
export interface DocumentSource {
  discovery(): PublicDocument | undefined;
  jwks(): PublicDocument;
}

interface Prepared {
  body: Buffer;
  etag: string;
  ok: Record<string, string | number>;
  notModified: Record<string, string | number>;
}

const CONTENT_TYPES: Record<string, string> = {
  '/.well-known/openid-configuration': 'application/json; charset=utf-8',
  '/jwks': 'application/jwk-set+json; charset=utf-8',
};

/** Headers (other than security headers) of a document response: caching, CORS, content type. */
export function documentHeaders(contentType: string, etag: string, maxAge: number): Record<string, string> {
  return {
    'cache-control': `public, max-age=${maxAge}`,
    etag,
    'access-control-allow-origin': '*',
    'content-type': contentType,
  };
}

/**
 * A request listener that answers GET /jwks and GET /.well-known/openid-configuration (exact paths) from prepared
 * buffers; returns false for every other request. Logs one line per request like the Koa app.
 */
export function documentResponder(source: DocumentSource, maxAge: number, trustProxy: boolean, log: Logger) {
  const prepared = new WeakMap<PublicDocument, [Prepared, Prepared]>();
  const prepare = (path: string, doc: PublicDocument): [Prepared, Prepared] => {
    let p = prepared.get(doc);
    if (!p) {
      const body = Buffer.from(doc.body);
      const own = documentHeaders(CONTENT_TYPES[path]!, doc.etag, maxAge);
      const { 'content-type': _type, ...notModified } = own;
      const build = (security: Record<string, string>): Prepared => ({
        body,
        etag: doc.etag,
        ok: { ...security, ...own, 'content-length': body.length },
        notModified: { ...security, ...notModified },
      });
      p = [build(PLAIN_HEADERS), build(SECURE_HEADERS)];
      prepared.set(doc, p);
    }
    return p;
  };
  const isSecure = (req: IncomingMessage) =>
    (req.socket as TLSSocket).encrypted === true ||
    (trustProxy && String(req.headers['x-forwarded-proto'] ?? '').split(',')[0] === 'https');

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET') return false;
    const path = req.url;
    const doc =
      path === '/jwks' ? source.jwks() : path === '/.well-known/openid-configuration' ? source.discovery() : undefined;
    if (!doc) return false;
    const start = process.hrtime.bigint();
    const p = prepare(path!, doc)[isSecure(req) ? 1 : 0];
    const incoming = req.headers['x-request-id'];
    const reqId = (typeof incoming === 'string' && incoming.slice(0, 64).replace(/[^\w.-]/g, '')) || randomUUID();
    res.setHeader('x-request-id', reqId);
    let status = 200;
    if (req.headers['if-none-match'] === p.etag) {
      status = 304;
      res.writeHead(304, p.notModified);
      res.end();
    } else {
      res.writeHead(200, p.ok);
      res.end(p.body);
    }
    if (log.isLevelEnabled('info')) {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      log.info({ reqId, method: 'GET', path, status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
    return true;
  };
}
