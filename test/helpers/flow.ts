/** Drives the authorization code + PKCE flow with openid-client as the portal and an Agent as the browser. */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { type Agent, actionOf, csrfOf, location } from './agent.ts';

export const DEMO_PIN = '001090012345';
export const DEMO_PASSWORD = 'demo-password-2026';
export const DEMO_CLIENT = 'demo-portal';
export const DEMO_REDIRECT = 'http://localhost:3001/callback';

/** openid-client configuration for the demo (public) portal against `issuer`. */
export async function demoPortal(issuer: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), DEMO_CLIENT, { token_endpoint_auth_method: 'none' }, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** A started authorization: the URL and the checks the portal keeps. */
export async function authorizationRequest(portal: oidc.Configuration, params: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(portal, {
    redirect_uri: DEMO_REDIRECT,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state };
}

/** Hosts a test may send requests to: tests use no network but loopback. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Follows redirects through the provider until it reaches `redirect` (the portal's redirect URI, not requested) or a
 * page. A redirect anywhere off this machine fails the test instead of being followed.
 */
export async function follow(
  agent: Agent,
  url: string,
  redirect = DEMO_REDIRECT,
): Promise<{ url: string; res: Response }> {
  let current = url;
  for (let i = 0; i < 10; i++) {
    if (current.startsWith(redirect)) return { url: current, res: new Response(null) };
    assert.ok(LOOPBACK.has(new URL(current).hostname), `sent off the machine: ${current}`);
    const res = await agent.get(current);
    if (res.status !== 303 && res.status !== 302) return { url: current, res };
    current = location(res, current);
  }
  throw new Error('too many redirects');
}

/** Submits the login form of the interaction page at `url`; returns the response. */
export async function submitLogin(agent: Agent, url: string, pin: string, password: string, html?: string) {
  const page = html ?? (await (await agent.get(url)).text());
  return agent.post(new URL(actionOf(page, 'login'), url), { csrf: csrfOf(page), pin, password });
}

/**
 * From `url` on, for an agent already signed in (after the login, or a second authorization): follows redirects and
 * consents if asked; returns the callback URL the portal receives at `redirect`.
 */
export async function consentThrough(agent: Agent, url: string, redirect = DEMO_REDIRECT): Promise<string> {
  let next = await follow(agent, url, redirect);
  if (!next.url.startsWith(redirect)) {
    const html = await next.res.text();
    assert.match(html, /consent/, 'consent page shown');
    const consent = await agent.post(new URL(actionOf(html, 'consent'), next.url), { csrf: csrfOf(html) });
    assert.equal(consent.status, 303);
    next = await follow(agent, location(consent, next.url), redirect);
  }
  return next.url;
}

/** Full flow: authorize, login, consent; returns the callback URL the portal receives at `redirect`. */
export async function loginThrough(
  agent: Agent,
  authUrl: string,
  pin = DEMO_PIN,
  password = DEMO_PASSWORD,
  redirect = DEMO_REDIRECT,
): Promise<string> {
  const start = await follow(agent, authUrl, redirect);
  assert.match(start.url, /\/interaction\//, 'authorize leads to the login page');
  const login = await submitLogin(agent, start.url, pin, password, await start.res.text());
  assert.equal(login.status, 303, 'login succeeds with a redirect');
  return consentThrough(agent, location(login, start.url), redirect);
}
