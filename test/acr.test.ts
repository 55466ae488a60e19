/**
 * The `acr` a portal receives (OIDC Core 5.5.1.1). Invariant: when a portal asks for acr values (voluntary
 * `acr_values`, or an essential `acr` in the claims parameter), its ID token carries one of the values it asked for,
 * in its own vocabulary (an alias stays the alias), that the authentication satisfies, the highest level first; an
 * essential value no authentication can satisfy is never answered with another value (the citizen is told and the
 * portal gets unmet_authentication_requirements); without a request, the canonical value of the level reached.
 * Discovery lists the canonical values and every alias.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createAccount } from '../src/accounts/index.ts';
import { addClient } from '../src/clients/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { argon2idHasher } from '../src/credentials/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';
import { type Service, startService } from '../src/main.ts';
import {
  clientMinLevel,
  echoedAcr,
  needsStepUp,
  PHISHING_RESISTANT,
  requirementOf,
  sessionLevel,
  UNSATISFIABLE,
} from '../src/oidc/assurance.ts';
import { Agent, actionOf, csrfOf, location } from './helpers/agent.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { DEMO_PASSWORD, DEMO_PIN } from './helpers/flow.ts';
import { makeLevel2 } from './helpers/level2.ts';
import { testEnv } from './helpers/service.ts';

const L1 = 'urn:dinhdanh:loa:1';
const L2 = 'urn:dinhdanh:loa:2';
/** The phishing-resistant value (PHISHING_RESISTANT_ACR's default): level 2 proven with a passkey. */
const PR = 'urn:dinhdanh:loa:2:phishing-resistant';
/** An alias from another vocabulary, configured like the defaults (ACR_ALIASES). */
const EIDAS_HIGH = 'http://eidas.europa.eu/LoA/high';
const PIN2 = '079195004321';
const PASSWORD2 = 'mật khẩu mức hai';
const REDIRECT = 'http://localhost:4201/cb';
let database: TestDatabase;
let service: Service;
let portal: oidc.Configuration;
let nextCode: () => Promise<string>;

type Step = { done: boolean; url: string; html: string; status?: number };

/** Follows the provider's redirects until the portal's redirect URI or a page. */
async function follow(agent: Agent, url: string): Promise<Step> {
  let current = url;
  for (let i = 0; i < 12; i++) {
    if (current.startsWith(REDIRECT)) return { done: true, url: current, html: '' };
    const res = await agent.get(current);
    if (res.status !== 302 && res.status !== 303) return { done: false, url: current, html: await res.text() };
    current = location(res, current);
  }
  throw new Error('too many redirects');
}

async function submit(agent: Agent, step: Step, action: string, fields: Record<string, string>): Promise<Step> {
  const res = await agent.post(new URL(actionOf(step.html, action), step.url), { csrf: csrfOf(step.html), ...fields });
  if (res.status !== 303 && res.status !== 302)
    return { done: false, url: step.url, html: await res.text(), status: res.status };
  return follow(agent, location(res, step.url));
}

/**
 * One authorization by `agent` with `params`: signs in with `pin` if asked (and the TOTP code if asked), consents if
 * asked; returns the ID token's claims, or the error the portal received.
 */
async function authorize(
  agent: Agent,
  params: Record<string, string>,
  pin = DEMO_PIN,
  password = DEMO_PASSWORD,
): Promise<{ acr?: unknown; error?: string | null; refresh?: string }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(portal, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  let step = await follow(agent, url.toString());
  if (!step.done && /\/login"/.test(step.html)) step = await submit(agent, step, 'login', { pin, password });
  if (!step.done && /\/otp"/.test(step.html)) step = await submit(agent, step, 'otp', { code: await nextCode() });
  if (!step.done && /\/unmet"/.test(step.html)) step = await submit(agent, step, 'unmet', {});
  if (!step.done && /\/consent"/.test(step.html)) step = await submit(agent, step, 'consent', {});
  assert.ok(step.done, `the browser got back to the portal (${step.url})`);
  const callback = new URL(step.url);
  if (callback.searchParams.get('error')) return { error: callback.searchParams.get('error') };
  const tokens = await oidc.authorizationCodeGrant(portal, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return { acr: decodeJwt(tokens.id_token!).acr, refresh: tokens.refresh_token };
}

const essential = (values: string[]) => ({
  claims: JSON.stringify({ id_token: { acr: { essential: true, values } } }),
});

before(async () => {
  database = await freshDatabase();
  const config = loadConfig(testEnv(database.url, { ACR_ALIASES: `LoA1=1,LoA2=2,${EIDAS_HIGH}=2` }));
  service = await startService(config);
  const hasher = await argon2idHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
  const level2AccountId = await createAccount(service.db, hasher, { pin: PIN2, password: PASSWORD2 });
  ({ nextCode } = await makeLevel2(service.db, loadMasterKey(config), PIN2, level2AccountId));
  const c = await addClient(service.db, {
    name: 'Cổng bảo hiểm',
    redirectUris: [REDIRECT],
    tokenEndpointAuthMethod: 'none',
    consent: 'implicit',
  });
  portal = await oidc.discovery(
    new URL(service.url),
    c.client_id,
    { token_endpoint_auth_method: 'none' },
    oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
});
after(async () => {
  await service?.close();
  await database?.drop();
});

describe('a level-1 sign-in', () => {
  it('without a request: the canonical value', async () => {
    assert.equal((await authorize(new Agent(), {})).acr, L1);
  });

  for (const [label, params, expected] of [
    ['voluntary LoA1', { acr_values: 'LoA1' }, 'LoA1'],
    ['voluntary canonical', { acr_values: L1 }, L1],
    ['voluntary LoA2 LoA1 (LoA2 out of reach)', { acr_values: 'LoA2 LoA1' }, 'LoA1'],
    ['voluntary LoA2 only (out of reach: the level reached, canonical)', { acr_values: 'LoA2' }, L1],
    ['voluntary unknown value', { acr_values: 'LoA9' }, L1],
    ['essential LoA1', essential(['LoA1']), 'LoA1'],
    [
      'essential LoA1 as a single value',
      { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'LoA1' } } }) },
      'LoA1',
    ],
    ['essential LoA2 or LoA1', essential(['LoA2', 'LoA1']), 'LoA1'],
    [
      'voluntary in the claims parameter',
      { claims: JSON.stringify({ id_token: { acr: { values: ['LoA1'] } } }) },
      'LoA1',
    ],
  ] as const) {
    it(`${label}: ${expected}`, async () => {
      assert.equal((await authorize(new Agent(), params)).acr, expected);
    });
  }

  it('an essential value only level 2 (or nothing) satisfies: unmet_authentication_requirements, never another value', async () => {
    const r = await authorize(new Agent(), essential(['LoA2', 'urn:example:unknown']));
    assert.equal(r.error, 'unmet_authentication_requirements');
  });

  it('a refresh keeps the value the portal asked for', async () => {
    const first = await authorize(new Agent(), {
      acr_values: 'LoA1',
      scope: 'openid offline_access',
      prompt: 'consent',
    });
    assert.equal(first.acr, 'LoA1');
    const refreshed = await oidc.refreshTokenGrant(portal, first.refresh!);
    assert.equal(decodeJwt(refreshed.id_token!).acr, 'LoA1');
  });
});

describe('a level-2 sign-in', () => {
  const agent = new Agent();

  it('essential LoA2: password and TOTP, then LoA2 as asked', async () => {
    assert.equal((await authorize(agent, essential(['LoA2']), PIN2, PASSWORD2)).acr, 'LoA2');
  });

  for (const [label, params, expected] of [
    ['no request', {}, L2],
    ['voluntary LoA1 (satisfied by level 2; all it asked for)', { acr_values: 'LoA1' }, 'LoA1'],
    ['a mix, LoA1 then canonical level 2: the highest satisfied', { acr_values: `LoA1 ${L2}` }, L2],
    [
      'a mix of three vocabularies: the highest, first among equals',
      { acr_values: `${L1} ${EIDAS_HIGH} LoA2` },
      EIDAS_HIGH,
    ],
    ['essential LoA1 or LoA2', essential(['LoA1', 'LoA2']), 'LoA2'],
  ] as const) {
    it(`then, in the same session, ${label}: ${expected}`, async () => {
      assert.equal((await authorize(agent, params, PIN2, PASSWORD2)).acr, expected);
    });
  }
});

describe('discovery', () => {
  it('acr_values_supported lists the canonical values and every alias', async () => {
    const supported = portal.serverMetadata().acr_values_supported ?? [];
    assert.deepEqual([...supported].sort(), [L1, L2, PR, EIDAS_HIGH, 'LoA1', 'LoA2'].sort());
  });
});

describe('the phishing-resistant level (unit)', () => {
  const acr = loadConfig(testEnv(undefined, { ACR_ALIASES: `LoA1=1,LoA2=2,${EIDAS_HIGH}=2` })).acr;
  const client = (metadata: Record<string, unknown>) => ({ metadata: () => metadata });

  it('is level 3 of the configuration, and configurable', () => {
    assert.equal(acr.phishingResistant, PR);
    assert.equal(acr.levels[PR], PHISHING_RESISTANT);
    assert.equal(acr.deviceBoundOnly, false);
    const other = loadConfig(
      testEnv(undefined, { PHISHING_RESISTANT_ACR: 'urn:x:pr', PHISHING_RESISTANT_DEVICE_BOUND: 'true' }),
    ).acr;
    assert.deepEqual([other.phishingResistant, other.levels['urn:x:pr'], other.deviceBoundOnly], ['urn:x:pr', 3, true]);
    assert.throws(() => loadConfig(testEnv(undefined, { PHISHING_RESISTANT_ACR: L2 })), /PHISHING_RESISTANT_ACR/);
  });

  it('a portal registered for it, an essential request for it, a voluntary one', () => {
    assert.equal(clientMinLevel(client({ dinhdanh_min_level: 2, dinhdanh_phishing_resistant: true })), 3);
    assert.equal(clientMinLevel(client({ dinhdanh_min_level: 2 })), 2);
    assert.deepEqual(requirementOf(acr, {}, 3), { required: 3, voluntary: 0 });
    assert.deepEqual(requirementOf(acr, essential([PR]), 1), { required: 3, voluntary: 0 });
    assert.deepEqual(requirementOf(acr, essential([PR, 'LoA2']), 1), { required: 2, voluntary: 0 });
    assert.deepEqual(requirementOf(acr, { acr_values: PR }, 1), { required: 1, voluntary: 3 });
    assert.deepEqual(requirementOf(acr, essential(['urn:example:unknown']), 1).required, UNSATISFIABLE);
  });

  it('only a passkey session of a level-2 account has it; a password + TOTP session must step up for it', () => {
    assert.equal(sessionLevel(acr, PR, 2), 3);
    assert.equal(sessionLevel(acr, PR, 1), 1, 'never above the account (a second factor reset)');
    assert.equal(sessionLevel(acr, L2, 2), 2);
    const required = { required: 3, voluntary: 0 };
    assert.equal(needsStepUp(required, 2, 2), true, 'password + TOTP: step up with a passkey');
    assert.equal(needsStepUp(required, 3, 2), false);
    const voluntary = { required: 1, voluntary: 3 };
    assert.equal(needsStepUp(voluntary, 2, 2), false, 'voluntary, at level 2 already: best effort');
    assert.equal(needsStepUp(voluntary, 1, 2), true, 'voluntary, password only: the second factor (passkey first)');
    assert.equal(needsStepUp(voluntary, 1, 1), false, 'a level-1 account: best effort');
  });

  it('the value a portal gets: asked values it satisfies, never below its registered minimum', () => {
    assert.equal(echoedAcr(acr, {}, PR), PR, 'no request: the canonical value of the level reached');
    assert.equal(echoedAcr(acr, { acr_values: `${PR} ${L2}` }, PR), PR);
    assert.equal(echoedAcr(acr, { acr_values: `${PR} ${L2}` }, L2), L2, 'voluntary, not reached: what was');
    assert.equal(echoedAcr(acr, { acr_values: 'LoA2' }, PR), 'LoA2', 'a level-2 portal keeps its own word');
    assert.equal(echoedAcr(acr, { acr_values: 'LoA2' }, PR, 3), PR, 'a portal registered for it gets it');
    assert.equal(echoedAcr(acr, essential([PR]), PR), PR);
  });
});

describe('the phishing-resistant level without a passkey', () => {
  const agent = new Agent();

  it('a voluntary request from a password + TOTP session: level 2 (best effort)', async () => {
    assert.equal((await authorize(agent, { acr_values: L2 }, PIN2, PASSWORD2)).acr, L2);
    assert.equal((await authorize(agent, { acr_values: `${PR} ${L2}` }, PIN2, PASSWORD2)).acr, L2);
  });

  it('an essential request, no passkey: unmet_authentication_requirements after a clear page', async () => {
    const r = await authorize(agent, essential([PR]), PIN2, PASSWORD2);
    assert.equal(r.error, 'unmet_authentication_requirements');
  });
});
