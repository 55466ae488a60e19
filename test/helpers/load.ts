/**
 * A steady, bounded load for fault tests and `npm run faults`: workers loop over full logins (authorize, login,
 * consent, code exchange), refreshes and client_credentials grants against one or more nodes, and tally every
 * outcome with its time. Nothing is retried: a 503 is counted as a 503, a connection cut as dropped.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../../src/db/index.ts';
import { deriveTokenKey, loadSecretRoot } from '../../src/keys/index.ts';
import { tokenVault } from '../../src/oidc/index.ts';
import { Agent, actionOf, csrfOf } from './agent.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './flow.ts';

/** What the load talks to. */
export interface LoadTarget {
  issuer: string;
  /** Base URLs that requests go to (round-robin per operation); the issuer's host when empty. */
  nodes: string[];
  portal: { clientId: string; secret: string; redirectUri: string };
  service: { clientId: string; secret: string };
  pin?: string;
  password?: string;
}

export type Op = 'login' | 'refresh' | 'client_credentials';

/** One operation's outcome: `ok`, an HTTP status that failed it, or `dropped` (no HTTP answer). */
export interface Outcome {
  op: Op;
  /** When it ended (epoch ms), how long it took, and the node it went to. */
  at: number;
  ms: number;
  node: string;
  result: 'ok' | number | 'dropped';
  /** Start of the body of a failure, and its Retry-After header. */
  detail?: string;
  retryAfter?: string;
}

export interface Tally {
  outcomes: Outcome[];
  /** Access and refresh tokens the service reported issued, with the model they are stored as. */
  issued: { model: 'AccessToken' | 'RefreshToken' | 'ClientCredentials'; value: string }[];
  /** Logins that completed (a code was issued). */
  logins: number;
}

class Failed extends Error {
  readonly status: number | 'dropped';
  readonly detail: string | undefined;
  readonly retryAfter: string | undefined;
  constructor(status: number | 'dropped', detail?: string, retryAfter?: string) {
    super(`failed: ${status}`);
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function send(agent: Agent, url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await agent.request(url, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch {
    throw new Failed('dropped');
  }
}

async function expect(res: Response, ...ok: number[]): Promise<Response> {
  if (!ok.includes(res.status)) {
    const body = await res.text().catch(() => '');
    throw new Failed(res.status, body.slice(0, 2000), res.headers.get('retry-after') ?? undefined);
  }
  return res;
}

async function token(agent: Agent, target: LoadTarget, form: Record<string, string>, who: 'portal' | 'service') {
  const c = who === 'portal' ? target.portal : target.service;
  const res = await send(agent, `${target.issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams(form).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(c.clientId, c.secret) },
  });
  await expect(res, 200);
  return (await res.json()) as { access_token: string; refresh_token?: string };
}

/** Authorize, log in, consent, exchange the code; returns the refresh token. */
async function login(agent: Agent, target: LoadTarget, tally: Tally): Promise<string | undefined> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = new URL(`${target.issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: target.portal.clientId,
    redirect_uri: target.portal.redirectUri,
    response_type: 'code',
    scope: 'openid offline_access',
    prompt: 'consent',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
  }).toString();
  let url = auth.toString();
  let code: string | null = null;
  for (let hop = 0; hop < 12 && !code; hop++) {
    if (url.startsWith(target.portal.redirectUri)) {
      code = new URL(url).searchParams.get('code');
      if (!code) throw new Failed(400, url);
      break;
    }
    const res = await expect(await send(agent, url), 200, 302, 303);
    if (res.status !== 200) {
      url = new URL(res.headers.get('location')!, url).toString();
      continue;
    }
    const html = await res.text();
    const post = (suffix: string, form: Record<string, string>) =>
      send(agent, new URL(actionOf(html, suffix), url).toString(), {
        method: 'POST',
        body: new URLSearchParams({ csrf: csrfOf(html), ...form }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    const next = /\/login"/.test(html)
      ? await post('login', { pin: target.pin ?? DEMO_PIN, password: target.password ?? DEMO_PASSWORD })
      : /\/consent"/.test(html)
        ? await post('consent', {})
        : null;
    if (!next) throw new Failed(200, html.slice(0, 300));
    await expect(next, 302, 303);
    url = new URL(next.headers.get('location')!, url).toString();
  }
  if (!code) throw new Failed(400, 'no code');
  tally.logins++;
  const t = await token(
    agent,
    target,
    { grant_type: 'authorization_code', code, redirect_uri: target.portal.redirectUri, code_verifier: verifier },
    'portal',
  );
  tally.issued.push({ model: 'AccessToken', value: t.access_token });
  if (t.refresh_token) tally.issued.push({ model: 'RefreshToken', value: t.refresh_token });
  return t.refresh_token;
}

/** A running load: its live tally, and how to stop it (waits for the operations in flight). */
export interface Load {
  readonly tally: Tally;
  /** Where operations go: change it to take a node out of rotation. */
  nodes: string[];
  stop(): Promise<Tally>;
}

/**
 * Starts `workers` loops; each does a login, then refreshes and client_credentials grants, logging in again when
 * it has no refresh token (every sixth operation is a login anyway). `pauseMs`: each worker waits that long after
 * each operation (a steady load that leaves the machine's cores to others, as the fault tests want under
 * `npm test`); 0, the default, runs as fast as the nodes answer.
 */
export function startLoad(target: LoadTarget, opts: { workers: number; pauseMs?: number }): Load {
  const tally: Tally = { outcomes: [], issued: [], logins: 0 };
  let running = true;
  let turn = 0;
  const load: Load = {
    tally,
    nodes: target.nodes.length ? [...target.nodes] : [target.issuer],
    async stop() {
      running = false;
      await done;
      return tally;
    },
  };
  const worker = async () => {
    let refresh: string | undefined;
    for (let i = 0; running; i++) {
      const agent = new Agent();
      agent.origin = load.nodes[turn++ % load.nodes.length];
      const op: Op = !refresh || i % 6 === 0 ? 'login' : i % 2 ? 'refresh' : 'client_credentials';
      const t0 = Date.now();
      try {
        if (op === 'login') refresh = await login(agent, target, tally);
        else if (op === 'refresh') {
          const t = await token(agent, target, { grant_type: 'refresh_token', refresh_token: refresh! }, 'portal');
          tally.issued.push({ model: 'AccessToken', value: t.access_token });
          refresh = t.refresh_token ?? refresh;
          if (t.refresh_token) tally.issued.push({ model: 'RefreshToken', value: t.refresh_token });
        } else {
          const t = await token(agent, target, { grant_type: 'client_credentials' }, 'service');
          tally.issued.push({ model: 'ClientCredentials', value: t.access_token });
        }
        tally.outcomes.push({ op, at: Date.now(), ms: Date.now() - t0, node: agent.origin!, result: 'ok' });
      } catch (err) {
        if (!(err instanceof Failed)) throw err;
        // A refresh that failed may have consumed the token: start again with a login.
        if (op === 'refresh') refresh = undefined;
        tally.outcomes.push({
          op,
          at: Date.now(),
          ms: Date.now() - t0,
          node: agent.origin!,
          result: err.status,
          detail: err.detail,
          retryAfter: err.retryAfter,
        });
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
  const done = Promise.all(Array.from({ length: opts.workers }, worker));
  return load;
}

/** Counts of outcomes by result ("ok", "503", "dropped", ...), optionally within [from, to). */
export function countBy(outcomes: Outcome[], from = 0, to = Number.POSITIVE_INFINITY): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outcomes) {
    if (o.at < from || o.at >= to) continue;
    const k = String(o.result);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * The row ids the issued tokens are stored under (keyed hashes, as the service computes them from its secret root
 * and the master key `masterB64`), to check that every token reported issued was stored.
 */
export async function issuedRowIds(db: Kysely<DB>, masterB64: string, tally: Tally): Promise<string[]> {
  const vault = tokenVault(deriveTokenKey(await loadSecretRoot(db, Buffer.from(masterB64, 'base64'))));
  return tally.issued.map((t) => vault.rowId(t.model, t.value));
}
