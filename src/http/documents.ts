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

/** The request id to log and echo: the caller's, cleaned to at most 64 safe characters, else a new UUID. */
export function requestId(incoming: string | undefined): string {
  return incoming?.slice(0, 64).replace(/[^\w.-]/g, '') || randomUUID();
}

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

/** A document with its header blocks as flat [name, value, ...] lists: node's cheapest form for writeHead. */
interface Prepared {
  body: Buffer;
  etag: string;
  ok: string[];
  notModified: string[];
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
        ok: Object.entries({ ...security, ...own, 'content-length': String(body.length) }).flat(),
        notModified: Object.entries({ ...security, ...notModified }).flat(),
      });
      p = [build(PLAIN_HEADERS), build(SECURE_HEADERS)];
      prepared.set(doc, p);
    }
    return p;
  };

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET') return false;
    const path = req.url;
    const doc =
      path === '/jwks' ? source.jwks() : path === '/.well-known/openid-configuration' ? source.discovery() : undefined;
    if (!doc) return false;
    const start = performance.now();
    // The three headers read here, from the raw list: building req.headers costs more than answering.
    let incomingId: string | undefined;
    let ifNoneMatch: string | undefined;
    let forwardedProto: string | undefined;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === 12 && name.toLowerCase() === 'x-request-id') incomingId ??= raw[i + 1];
      else if (name.length === 13 && name.toLowerCase() === 'if-none-match') ifNoneMatch ??= raw[i + 1];
      else if (name.length === 17 && name.toLowerCase() === 'x-forwarded-proto') forwardedProto ??= raw[i + 1];
    }
    const secure =
      (req.socket as TLSSocket).encrypted === true || (trustProxy && forwardedProto?.split(',')[0] === 'https');
    const p = prepare(path!, doc)[secure ? 1 : 0];
    const reqId = requestId(incomingId);
    let status = 200;
    if (ifNoneMatch === p.etag) {
      status = 304;
      res.writeHead(304, [...p.notModified, 'x-request-id', reqId]);
      res.end();
    } else {
      res.writeHead(200, [...p.ok, 'x-request-id', reqId]);
      res.end(p.body);
    }
    if (log.isLevelEnabled('info')) {
      const ms = Math.round((performance.now() - start) * 10) / 10;
      log.info({ reqId, method: 'GET', path, status, ms }, 'request');
    }
    return true;
  };
}
