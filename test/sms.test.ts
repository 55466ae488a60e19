/**
 * The HTTP SMS gateway, against a real HTTP server playing the carrier. Invariants: one JSON POST per message built
 * from the template (values substituted inside strings only, so a message cannot change the body's structure), with
 * the configured Authorization; a gateway that refuses, fails or stalls is a 503 with Retry-After within the
 * deadline, never a hang or a 500, and the citizen's page says so.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { connect } from '../src/db/index.ts';
import type { Service } from '../src/main.ts';
import { insertResidents } from '../src/registry/index.ts';
import { gatewaySender, purgeOutbox } from '../src/sms/index.ts';
import { Agent, csrfOf } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { startTestService } from './helpers/service.ts';

let gateway: Server;
let url: string;
let answer: (req: IncomingMessage, res: ServerResponse) => void;
const received: { auth: string | undefined; body: unknown }[] = [];

before(async () => {
  gateway = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
    });
    req.on('end', () => {
      received.push({ auth: req.headers.authorization, body: JSON.parse(data) });
      answer(req, res);
    });
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/send`;
});
after(() => {
  gateway.closeAllConnections();
  gateway.close();
});

const settings = (over: Partial<Parameters<typeof gatewaySender>[0]> = {}) => ({
  url,
  authorization: 'Bearer carrier-token',
  bodyTemplate: '{"msisdn":"{{to_digits}}","message":"{{text}}","brandname":"{{sender}}","meta":["{{purpose}}"]}',
  sender: 'DINHDANH',
  timeoutMs: 500,
  ...over,
});

describe('gatewaySender', () => {
  it('posts the template with the values inside its strings, and the Authorization header', async () => {
    answer = (_q, res) => res.writeHead(202).end('{"status":"queued"}');
    received.length = 0;
    const text = 'Ma "123456"}, "x": {"evil": true';
    await gatewaySender(settings()).send({ to: '+84912000001', text, purpose: 'enroll' });
    assert.deepEqual(received, [
      {
        auth: 'Bearer carrier-token',
        body: { msisdn: '84912000001', message: text, brandname: 'DINHDANH', meta: ['enroll'] },
      },
    ]);
  });

  it('turns a refusal, a failure or a stall into 503 with Retry-After, within the deadline', async () => {
    for (const [what, fn] of [
      ['refused', (_q: IncomingMessage, res: ServerResponse) => res.writeHead(401).end()],
      ['failed', (_q: IncomingMessage, res: ServerResponse) => res.writeHead(500).end()],
      ['stalled', () => {}],
    ] as const) {
      answer = fn;
      const t0 = performance.now();
      await assert.rejects(
        gatewaySender(settings()).send({ to: '+84912000001', text: 'x', purpose: 'enroll' }),
        (e: { code?: string; statusCode?: number; retryAfter?: number }) =>
          e.code === 'unavailable' && e.statusCode === 503 && (e.retryAfter ?? 0) > 0,
        what,
      );
      assert.ok(performance.now() - t0 < 3000, `${what}: no hang`);
    }
    gateway.closeAllConnections();
  });

  it('turns an unreachable gateway into 503', async () => {
    await assert.rejects(
      gatewaySender(settings({ url: 'http://127.0.0.1:1/send' })).send({
        to: '+84912000001',
        text: 'x',
        purpose: 'enroll',
      }),
      (e: { code?: string }) => e.code === 'unavailable',
    );
  });
});

describe('enrollment through a gateway', () => {
  let database: TestDatabase;
  let service: Service;
  before(async () => {
    database = await freshDatabase();
    service = await startTestService(database.url, { SMS_GATEWAY_URL: url, SMS_GATEWAY_TIMEOUT_MS: '500' });
    await insertResidents(service.db, [
      {
        pin: '001090000301',
        fullName: 'Mai Văn Cổng',
        familyName: 'Mai',
        middleName: 'Văn',
        givenName: 'Cổng',
        birthDate: '1990-03-01',
        sex: 'male',
        placeOfOrigin: null,
        permanentResidence: null,
        currentResidence: null,
        phone: '+84912000301',
      },
    ]);
  });
  after(async () => {
    await service?.close();
    await database?.drop();
  });

  const enroll = async () => {
    const agent = new Agent();
    const form = await (await agent.get(`${service.url}/enroll`)).text();
    return agent.post(
      `${service.url}/enroll`,
      {
        csrf: csrfOf(form),
        pin: '001090000301',
        fullName: 'Mai Văn Cổng',
        birthDate: '01/03/1990',
        password: 'mật khẩu qua cổng',
      },
      { accept: 'text/html' },
    );
  };

  it('sends the code to the registered phone through the gateway, and nothing to the outbox', async () => {
    answer = (_q, res) => res.writeHead(200).end();
    received.length = 0;
    const res = await enroll();
    assert.equal(res.status, 200);
    const body = received[0]?.body as { to: string; text: string };
    assert.equal(body.to, '+84912000301');
    assert.match(body.text, /\b\d{6}\b/);
    const outbox = await service.db.selectFrom('sms_outbox').select('id').execute();
    assert.equal(outbox.length, 0);
  });

  it('answers 503 with Retry-After and a page in Vietnamese when the gateway is down', async () => {
    answer = (_q, res) => res.writeHead(503).end();
    const res = await enroll();
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.match(await res.text(), /tạm gián đoạn/);
  });
});

describe('the development outbox', () => {
  it('is purged of messages older than a day, in batches, keeping the newer ones', async () => {
    const database = await freshDatabase();
    const db = connect(database.url, 1);
    try {
      await sql`insert into sms_outbox (to_phone, purpose, body, created_at)
        select '+84900000009', 'enroll', 'old ' || g, now() - interval '2 days' from generate_series(1, 25) g`.execute(
        db,
      );
      await sql`insert into sms_outbox (to_phone, purpose, body) values ('+84900000009', 'enroll', 'new')`.execute(db);
      assert.equal(await purgeOutbox(db, 10), 25, 'three statements of at most 10');
      const left = await sql<{ body: string }>`select body from sms_outbox`.execute(db);
      assert.deepEqual(
        left.rows.map((r) => r.body),
        ['new'],
      );
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});
