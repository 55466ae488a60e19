/**
 * The library limit: raw oidc-provider with in-memory storage, the same client shapes and the same argon2id
 * work per login, minimal interactions (login posts a personal ID and password; consent is pre-granted, as it is
 * remembered in dinhdanh). Started by bench/run.ts; prints "listening <url>" when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import argon2 from 'argon2';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';

const PASSWORD = 'demo-password-2026';
const port = Number(process.env.PORT ?? 0);
const server = createServer();
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const issuer = `http://localhost:${(server.address() as AddressInfo).port}`;
const params = { type: argon2.argon2id as 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const hash = await argon2.hash(PASSWORD, params);

/**
 * In-memory storage like the library's own MemoryAdapter, without its 1,000-entry LRU bound (which evicts codes
 * minted ahead of the code-exchange scenario). A Map, expiry checked on read: the cheapest storage there is.
 */
const store = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
const index = new Map<string, string>(); // uid / userCode / grant member -> key
class MapAdapter implements Adapter {
  readonly model: string;
  constructor(model: string) {
    this.model = model;
  }
  #key = (id: string) => `${this.model}:${id}`;
  async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
    const key = this.#key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.uid) index.set(`uid:${payload.uid}`, key);
    if (payload.userCode) index.set(`userCode:${payload.userCode}`, key);
    if (payload.grantId) index.set(`grant:${payload.grantId}:${key}`, key);
  }
  async find(id: string) {
    const hit = store.get(this.#key(id));
    return hit && hit.expiresAt > Date.now() ? hit.payload : undefined;
  }
  #byIndex(entry: string) {
    const key = index.get(entry);
    return key ? this.find(key.slice(this.model.length + 1)) : undefined;
  }
  async findByUid(uid: string) {
    return this.#byIndex(`uid:${uid}`);
  }
  async findByUserCode(userCode: string) {
    return this.#byIndex(`userCode:${userCode}`);
  }
  async consume(id: string) {
    const hit = store.get(this.#key(id));
    if (hit) hit.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    store.delete(this.#key(id));
  }
  async revokeByGrantId(grantId: string) {
    for (const [k, key] of index) if (k.startsWith(`grant:${grantId}:`)) store.delete(key);
  }
}

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const provider = new Provider(issuer, {
  adapter: MapAdapter,
  jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] },
  clients: [
    {
      client_id: 'bench-portal',
      client_secret: 'bench-secret-bench-secret-bench-secret',
      redirect_uris: ['http://localhost:9/cb'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      scope: 'openid profile offline_access',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  claims: { openid: ['sub'], profile: ['name'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, name: 'Nguyễn Văn An' }) }),
  async loadExistingGrant(ctx) {
    // The session's grant for this portal is reused (as in dinhdanh): a new one would revoke the codes of the last.
    const grantId = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
    const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    if (existing) return existing;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client!.clientId,
      accountId: ctx.oidc.session!.accountId,
    });
    grant.addOIDCScope(String(ctx.oidc.params!.scope));
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
  ttl: {
    AccessToken: 600,
    RefreshToken: 86400,
    Grant: 86400,
    Session: 3600,
    Interaction: 600,
    IdToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
  },
});
const callback = provider.callback();
server.on('request', async (req, res) => {
  const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(req.url ?? '');
  if (!m) return callback(req, res);
  if (!m[2]) {
    res.setHeader('content-type', 'text/html');
    return res.end(`<form method="post" action="/interaction/${m[1]}/login"><input name="csrf" value="x"></form>`);
  }
  let body = '';
  for await (const c of req) body += c;
  const form = new URLSearchParams(body);
  const ok = await argon2.verify(hash, form.get('password') ?? '');
  if (!ok) {
    res.statusCode = 401;
    return res.end();
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: String(form.get('pin')) }, consent: {} },
    { mergeWithLastSubmission: false },
  );
});
process.stdout.write(`listening ${issuer}\n`);
// Exit on SIGTERM (as bench/run.ts stops it) so that a --cpu-prof profile gets written.
process.on('SIGTERM', () => process.exit(0));
