/**
 * Load generator, run by bench/run.ts as its own process (pinned to the other core): `concurrency` virtual users
 * repeat one scenario against one target for `durationMs`, then print one JSON line of results. Loopback only.
 * Closed loop by default (each user sends as soon as its last answer came: peak throughput); with `rate`, open loop
 * at a fixed request rate, each latency counted from the request's scheduled start, so a stall is not hidden by
 * the requests it delayed (coordinated omission).
 */

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { cookieFetch } from './browser.ts';

export interface LoadInput {
  scenario: string;
  issuer: string;
  durationMs: number;
  concurrency: number;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  password: string;
  pins: string[];
  refreshTokens: string[];
  accessTokens: string[];
  /** Authorization codes minted beforehand (scenario `code`), all with the PKCE verifier `verifier`. */
  codes?: string[];
  verifier?: string;
  /** Open loop at this many requests/s in total (latency counted from each request's scheduled time); else closed loop. */
  rate?: number;
}

const input = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadInput;
const basic = `Basic ${Buffer.from(`${encodeURIComponent(input.clientId)}:${encodeURIComponent(input.clientSecret)}`).toString('base64')}`;
const form = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic };
const url = (p: string) => `${input.issuer}${p}`;

async function expectOk(res: Response, what: string): Promise<Response> {
  if (res.status >= 400) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return res;
}

/** One full interactive login: authorize -> login page -> password -> (consent remembered) -> code -> tokens. */
async function login(vu: number, i: number): Promise<void> {
  const get = cookieFetch();
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    client_id: input.clientId,
    response_type: 'code',
    scope: 'openid profile',
    redirect_uri: input.redirectUri,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: 's',
  });
  let res = await get(url(`/auth?${q}`));
  let loc = new URL(res.headers.get('location')!, input.issuer).toString();
  const page = await (await expectOk(await get(loc), 'login page')).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
  const action = /action="([^"]*\/login)"/.exec(page)![1]!;
  const pin = input.pins[(vu * 7919 + i) % input.pins.length]!;
  res = await get(new URL(action, input.issuer).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, pin, password: input.password }).toString(),
  });
  if (res.status !== 303 && res.status !== 302) throw new Error(`login: HTTP ${res.status}`);
  for (let hop = 0; hop < 6; hop++) {
    loc = new URL(res.headers.get('location')!, input.issuer).toString();
    if (loc.startsWith(input.redirectUri)) break;
    res = await get(loc);
    if (res.status !== 303 && res.status !== 302) throw new Error(`authorize resume: HTTP ${res.status}`);
  }
  const code = new URL(loc).searchParams.get('code');
  if (!code) throw new Error(`no code: ${loc.slice(0, 120)}`);
  await expectOk(
    await fetch(url('/token'), {
      method: 'POST',
      headers: form,
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: input.redirectUri,
        code_verifier: verifier,
      }).toString(),
    }),
    'code exchange',
  );
}

/**
 * Plain requests go through node:http with one keep-alive connection per user: fetch costs several times more CPU
 * per request, and the generator shares its core with PostgreSQL.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: input.concurrency });
const target = new URL(input.issuer);

function send(method: string, path: string, headers: Record<string, string>, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method,
        path,
        headers: body ? { ...headers, 'content-length': String(Buffer.byteLength(body)) } : headers,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () =>
          res.statusCode! >= 400
            ? reject(new Error(`${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`))
            : resolve(text),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let nextCode = 0;

/** One request of the scenario; resolves false when there is nothing left to send (codes used up). */
function iteration(vu: number): (i: number) => Promise<unknown> {
  let refresh = input.refreshTokens[vu];
  const bearer = { authorization: `Bearer ${input.accessTokens[vu]}` };
  switch (input.scenario) {
    case 'code':
      return async () => {
        const code = input.codes?.[nextCode++];
        if (!code) return false;
        const body = new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: input.redirectUri,
          code_verifier: input.verifier!,
        }).toString();
        await send('POST', '/token', form, body);
        return true;
      };
    case 'discovery':
      return () => send('GET', '/.well-known/openid-configuration', {});
    case 'jwks':
      return () => send('GET', '/jwks', {});
    case 'client_credentials':
      return () => send('POST', '/token', form, 'grant_type=client_credentials');
    case 'refresh':
      return async () => {
        const text = await send('POST', '/token', form, `grant_type=refresh_token&refresh_token=${refresh}`);
        refresh = (JSON.parse(text) as { refresh_token: string }).refresh_token;
      };
    case 'userinfo':
      return () => send('GET', '/me', bearer);
    case 'introspection':
      return () => send('POST', '/token/introspection', form, `token=${input.accessTokens[vu]}`);
    case 'login':
      return (i) => login(vu, i);
    default:
      throw new Error(`unknown scenario ${input.scenario}`);
  }
}

const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
const start = performance.now();
const end = start + input.durationMs;
await Promise.all(
  Array.from({ length: input.concurrency }, async (_, vu) => {
    const run = iteration(vu);
    for (let i = 0; ; i++) {
      let t = performance.now();
      if (input.rate) {
        t = start + ((i * input.concurrency + vu) * 1000) / input.rate;
        const wait = t - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (performance.now() >= end) break;
      try {
        if ((await run(i)) === false) break;
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  }),
);
const elapsedS = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
process.stdout.write(
  `${JSON.stringify({ requests: latencies.length, errors, firstError, rps: latencies.length / elapsedS, p50: pct(50), p99: pct(99) })}\n`,
);
agent.destroy();
