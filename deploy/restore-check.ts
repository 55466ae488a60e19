/**
 * The citizen's side of the restore drill (deploy/restore-test.sh): signs the demo citizen in to the demo portal
 * through the real OIDC flow (authorization code + PKCE, login form, consent) and keeps what a browser and a portal
 * would keep; after a point-in-time restore, checks what must have survived and what must not.
 *
 *   node deploy/restore-check.ts signin STATE_FILE LABEL   sign in, store the cookie jar and tokens under LABEL
 *   node deploy/restore-check.ts check STATE_FILE          LABEL `before` must work, LABEL `after` must not
 *
 * The issuer is ISSUER (the restored node must answer at the same issuer). The state file holds live tokens: the
 * caller keeps it in a private scratch folder and deletes it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as oidc from 'openid-client';
import { Agent, location } from '../test/helpers/agent.ts';
import { authorizationRequest, DEMO_REDIRECT, demoPortal, follow, loginThrough } from '../test/helpers/flow.ts';

/** What one signed-in browser and its portal hold. */
interface Held {
  jar: [string, string][];
  refreshToken: string;
  accessToken: string;
  sub: string;
  at: string;
}

type State = Record<string, Held>;

const issuer = process.env.ISSUER;
if (!issuer) throw new Error('ISSUER is not set');

async function load(file: string): Promise<State> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as State;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/** Signs the demo citizen in with a new browser, consenting to offline access; returns what it and the portal keep. */
async function signIn(portal: oidc.Configuration): Promise<Held> {
  const agent = new Agent();
  const { url, verifier, state } = await authorizationRequest(portal, {
    scope: 'openid profile offline_access',
    prompt: 'consent',
  });
  const callback = await loginThrough(agent, url.toString());
  const tokens = await oidc.authorizationCodeGrant(portal, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  if (!tokens.refresh_token) throw new Error('no refresh token issued');
  return {
    jar: [...agent.jar],
    refreshToken: tokens.refresh_token,
    accessToken: tokens.access_token,
    sub: String(tokens.claims()?.sub),
    at: new Date().toISOString(),
  };
}

/** The browser of `held`, cookies and all. */
function browserOf(held: Held): Agent {
  const agent = new Agent();
  for (const [k, v] of held.jar) agent.jar.set(k, v);
  return agent;
}

/** `code` when the browser's session signs it in silently (prompt=none), else the error the portal receives. */
async function silentAuthorization(portal: oidc.Configuration, held: Held): Promise<string> {
  const agent = browserOf(held);
  const { url, verifier, state } = await authorizationRequest(portal, { prompt: 'none' });
  const { url: landed } = await follow(agent, url.toString());
  if (!landed.startsWith(DEMO_REDIRECT)) return `no redirect to the portal (${landed})`;
  const params = new URL(landed).searchParams;
  if (!params.get('code')) return params.get('error') ?? 'no code';
  const tokens = await oidc.authorizationCodeGrant(portal, new URL(landed), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return tokens.claims()?.sub === held.sub ? 'code' : 'code for another citizen';
}

/** `signed in` when /account shows the citizen's page to this browser, else where it ended. */
async function accountPage(held: Held): Promise<string> {
  const agent = browserOf(held);
  let current = `${issuer}/account`;
  let res = await agent.get(current);
  for (let i = 0; i < 10 && (res.status === 302 || res.status === 303); i++) {
    current = location(res, current);
    res = await agent.get(current);
  }
  const path = new URL(current).pathname;
  const html = await res.text();
  if (res.status === 200 && path === '/account' && html.includes('Nguyễn Văn An')) return 'signed in';
  return `${res.status} at ${path}`;
}

/** The refresh grant's outcome: `refreshed` or the OAuth error. */
async function refresh(portal: oidc.Configuration, held: Held): Promise<string> {
  try {
    const t = await oidc.refreshTokenGrant(portal, held.refreshToken);
    return t.access_token ? 'refreshed' : 'no access token';
  } catch (err) {
    return (err as { error?: string }).error ?? (err as Error).message;
  }
}

/** The userinfo endpoint's answer to an access token: `answered` or the HTTP status. */
async function userinfo(held: Held): Promise<string> {
  const res = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${held.accessToken}` } });
  return res.ok ? 'answered' : String(res.status);
}

async function check(file: string): Promise<boolean> {
  const state = await load(file);
  const before = state.before;
  const after = state.after;
  if (!before || !after) throw new Error('the state file needs both `before` and `after`');
  const portal = await demoPortal(issuer!);
  const checks: [string, string, (r: string) => boolean][] = [
    ['refresh token issued before the target: refresh grant', await refresh(portal, before), (r) => r === 'refreshed'],
    [
      'session cookie from before the target: prompt=none',
      await silentAuthorization(portal, before),
      (r) => r === 'code',
    ],
    ['session cookie from before the target: /account', await accountPage(before), (r) => r === 'signed in'],
    ['refresh token issued after the target: refused', await refresh(portal, after), (r) => r === 'invalid_grant'],
    [
      'session cookie from after the target: prompt=none refused',
      await silentAuthorization(portal, after),
      (r) => r === 'login_required',
    ],
    ['access token issued after the target: userinfo refuses', await userinfo(after), (r) => r === '401'],
  ];
  let ok = true;
  for (const [name, result, pass] of checks) {
    const passed = pass(result);
    ok &&= passed;
    process.stdout.write(`${passed ? 'PASS' : 'FAIL'}  ${name}: ${result}\n`);
  }
  return ok;
}

const [command, file, label] = process.argv.slice(2);
if (command === 'signin' && file && label) {
  const state = await load(file);
  state[label] = await signIn(await demoPortal(issuer));
  await writeFile(file, JSON.stringify(state), { mode: 0o600 });
  process.stdout.write(`signed in (${label}): session cookie, refresh token and access token kept\n`);
} else if (command === 'check' && file) {
  process.exitCode = (await check(file)) ? 0 : 1;
} else {
  process.stderr.write('usage: restore-check.ts signin STATE_FILE LABEL | check STATE_FILE\n');
  process.exitCode = 2;
}
