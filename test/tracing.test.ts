/**
 * Invariant: with the standard OTEL_* variables a node exports its traces over OTLP/HTTP: one login is one trace
 * whose HTTP server spans are named by route template (`POST /interaction/:uid/login`, never the raw path) and whose
 * database spans carry the statement without its parameters (no personal ID, no password hash leaves the node).
 * Without them, nothing is loaded (the default; every other test runs so).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { authorizationRequest, DEMO_PASSWORD, DEMO_PIN, demoPortal, loginThrough } from './helpers/flow.ts';
import { type NodeProcess, startNode } from './helpers/process.ts';
import { testEnv } from './helpers/service.ts';
import { until } from './helpers/wait.ts';

/** A span as OTLP/JSON carries it, flattened. */
interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

let database: TestDatabase;
let node: NodeProcess;
let receiver: Server;
const spans: Span[] = [];

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
const anyValue = (v: AnyValue) => v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue;

before(async () => {
  // The local OTLP/HTTP receiver: POST /v1/traces, JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json).
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const doc = JSON.parse(body) as {
          resourceSpans: {
            scopeSpans: {
              spans: (Omit<Span, 'attributes'> & { attributes?: { key: string; value: AnyValue }[] })[];
            }[];
          }[];
        };
        for (const rs of doc.resourceSpans ?? [])
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              spans.push({
                ...s,
                attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, anyValue(a.value)])),
              });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  database = await freshDatabase();
  node = await startNode(
    testEnv(database.url, {
      LOG_LEVEL: 'info',
      NODE_OPTIONS: '--import=./src/telemetry.ts',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_SERVICE_NAME: 'dinhdanh-test',
    }),
  );
});
after(async () => {
  await node?.stop();
  await database?.drop();
  await new Promise((r) => receiver?.close(r));
});

describe('traces', () => {
  it('one login is a trace with route-template server spans and pg spans without parameters', async () => {
    const issuer = /listening on (\S+)/.exec(node.output())![1]!;
    const portal = await demoPortal(issuer);
    const { url } = await authorizationRequest(portal);
    await loginThrough(new Agent(), url.toString());

    const server = () => spans.filter((s) => s.kind === 2);
    await until('the login POST span arrives', () => server().some((s) => s.name === 'POST /interaction/:uid/login'));
    const login = server().find((s) => s.name === 'POST /interaction/:uid/login')!;
    assert.equal(login.attributes['http.route'], '/interaction/:uid/login');
    assert.ok(
      server().some((s) => s.name === 'GET authorization'),
      `oidc-provider's routes by name; got ${server().map((s) => s.name)}`,
    );
    for (const s of server()) assert.doesNotMatch(s.name, /\/interaction\/[A-Za-z0-9_-]{10,}/, 'no raw path');

    const isQuery = (s: Span) => s.traceId === login.traceId && s.name.startsWith('pg.query');
    await until('the login’s database spans arrive', () => spans.some(isQuery));
    const db = spans.filter(isQuery);
    for (const s of db) {
      assert.equal(s.attributes['db.system.name'], 'postgresql');
      const text = JSON.stringify(s.attributes);
      assert.ok(!text.includes(DEMO_PIN) && !text.includes(DEMO_PASSWORD), `no parameter in ${text}`);
      assert.equal(s.attributes['db.postgresql.values'], undefined);
    }
    assert.ok(
      db.some((s) => /\$1/.test(String(s.attributes['db.query.text'] ?? ''))),
      'statements are sent with their placeholders',
    );

    // The request log line of that login carries its trace id.
    await until('the request log line', () => node.output().includes(login.traceId));
  });
});
