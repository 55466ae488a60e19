/**
 * Load generator, run by bench/run.ts as its own process (pinned to the other core): `concurrency` virtual users
 * repeat one scenario against one target for `durationMs`, then print one JSON line of results. Loopback only.
 */

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

function iteration(vu: number): (i: number) => Promise<void> {
  let refresh = input.refreshTokens[vu];
  switch (input.scenario) {
    case 'discovery':
      return async () =>
        void (await (await expectOk(await fetch(url('/.well-known/openid-configuration')), 'discovery')).arrayBuffer());
    case 'jwks':
      return async () => void (await (await expectOk(await fetch(url('/jwks')), 'jwks')).arrayBuffer());
    case 'client_credentials':
      return async () =>
        void (await (
          await expectOk(
            await fetch(url('/token'), { method: 'POST', headers: form, body: 'grant_type=client_credentials' }),
            'cc',
          )
        ).arrayBuffer());
    case 'refresh':
      return async () => {
        const res = await expectOk(
          await fetch(url('/token'), {
            method: 'POST',
            headers: form,
            body: `grant_type=refresh_token&refresh_token=${refresh}`,
          }),
          'refresh',
        );
        refresh = ((await res.json()) as { refresh_token: string }).refresh_token;
      };
    case 'userinfo':
      return async () =>
        void (await (
          await expectOk(
            await fetch(url('/me'), { headers: { authorization: `Bearer ${input.accessTokens[vu]}` } }),
            'userinfo',
          )
        ).arrayBuffer());
    case 'introspection':
      return async () =>
        void (await (
          await expectOk(
            await fetch(url('/token/introspection'), {
              method: 'POST',
              headers: form,
              body: `token=${input.accessTokens[vu]}`,
            }),
            'introspection',
          )
        ).arrayBuffer());
    case 'login':
      return (i) => login(vu, i);
    default:
      throw new Error(`unknown scenario ${input.scenario}`);
  }
}

const latencies: number[] = [];
let errors = 0;
let firstError: string | undefined;
const end = Date.now() + input.durationMs;
await Promise.all(
  Array.from({ length: input.concurrency }, async (_, vu) => {
    const run = iteration(vu);
    for (let i = 0; Date.now() < end; i++) {
      const t = performance.now();
      try {
        await run(i);
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  }),
);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
process.stdout.write(
  `${JSON.stringify({ requests: latencies.length, errors, firstError, rps: latencies.length / (input.durationMs / 1000), p50: pct(50), p99: pct(99) })}\n`,
);
