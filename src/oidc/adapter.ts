/**
 * oidc-provider storage adapter over PostgreSQL.
 *
 * Threat note: this table holds sessions, grants, codes and tokens. `consume` is atomic (a conditional UPDATE), so
 * when two nodes race to redeem one authorization code or refresh token exactly one wins and the other gets
 * invalid_grant. Expired rows are invisible to `find` even before the purge job deletes them. Clients are not stored
 * here: the `Client` model reads the `clients` table through the clients domain.
 *
 * Replay detection (a client assertion's or DPoP proof's `jti`, single-use on every node): oidc-provider asks `find`
 * whether the id was seen, then saves it, two steps two nodes could interleave (both would accept one assertion). Here
 * `find` of a `ReplayDetection` claims the id in one conditional INSERT: the first caller is told "not seen" and holds
 * the id; every later or concurrent one is told "seen" and refuses (invalid_client for an assertion). oidc-provider's
 * save that follows sets the real expiry.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely } from 'kysely';
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import type { AccountWithResidentRow } from '../accounts/index.ts';
import { findClientMetadata } from '../clients/index.ts';
import type { DB } from '../db/index.ts';
import {
  claimPayload,
  consumeAndSave,
  consumePayload,
  deleteAccountGrant,
  destroyPayload,
  type FoundPayload,
  findPayload,
  findPayloads,
  type PayloadWrite,
  payloadKey,
  purgeExpiredPayloads,
  revokePayloadsByGrant,
  selectAccountGrants,
  selectLatestGrantId,
  upsertPayload,
} from './adapter.repository.ts';
import { BEARER_MODELS, HASHED, type TokenVault } from './token-at-rest.ts';

/**
 * How long a claimed replay-detection id is held before oidc-provider's save gives it the real expiry (the assertion's
 * or proof's own lifetime); a claim whose save never came (the request failed) is released after this.
 */
const REPLAY_CLAIM_SECONDS = 600;

/** Consumes held back within a request (the token endpoint's: a code, a refresh token) with the saves after them. */
const HELD_CONSUMES = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/**
 * What one request of the provider's back-channel endpoints holds (see `inRequestScope`): grants and accounts read
 * with its token, by key, each taken once by the request's next lookup of it or dropped when the request writes it;
 * and the writes it holds back until `commitRequest`.
 */
interface RequestScope {
  prefetched: Map<string, AdapterPayload | AccountWithResidentRow | undefined>;
  pending?: PendingWrites;
  /** Run once the held writes are settled (see `WriteOutcome`); at once when none are held. */
  afterCommit: ((outcome: WriteOutcome) => void)[];
}

/**
 * What became of a request's held writes: committed; refused (a consume lost to another request, or the request
 * failed and they were dropped: nothing written); failed (the database did not answer: nothing written, as far as
 * this node knows; see commitRequest).
 */
export type WriteOutcome = 'committed' | 'refused' | 'failed';

/**
 * A token request's consume (of its code or refresh token) and the saves after it, held back to go to PostgreSQL in
 * one statement and one commit (three before): see `commitRequest`.
 */
interface PendingWrites {
  /** The consumed instances by key (an instance may have two row ids: see consumeKeys). */
  consume: Map<string, { model: string; id: string }[]>;
  /** The saves by row key: saving one instance twice keeps the last. */
  saves: Map<string, PayloadWrite>;
  /** Writes them; false when a consume lost to another request (nothing written). */
  flush(): Promise<boolean>;
  /** The model of the first consume, for the error a lost race gets. */
  model: string;
}

/** Settles the scope's held writes: written (`keep`) or dropped; runs the callbacks waiting for them. */
async function settleScope(scope: RequestScope | undefined, keep: boolean): Promise<WriteOutcome> {
  const pending = scope?.pending;
  let outcome: WriteOutcome = 'committed';
  if (scope && pending) {
    scope.pending = undefined;
    outcome = 'failed';
    try {
      outcome = !keep ? 'refused' : (await pending.flush()) ? 'committed' : 'refused';
    } finally {
      for (const f of scope.afterCommit.splice(0)) f(outcome);
    }
  }
  return outcome;
}

const requestScope = new AsyncLocalStorage<RequestScope>();

/**
 * Runs one request of the provider's back-channel endpoints (token, introspection, revocation, userinfo, PAR) in a
 * scope of its own. There:
 * - a grant and an account read with the token (the same statement, the same snapshot: a round trip earlier than the
 *   library's own reads, which they answer) serve the request's own lookups; a revocation or a suspension, which
 *   deletes the grant or changes the account together with its tokens in one transaction, is seen for both or for
 *   neither;
 * - a consume and the saves after it are held back and written in one statement (see `commitRequest`, which the
 *   caller must await before the response leaves: until then nothing of it is committed).
 * Never shared between requests.
 */
export function inRequestScope<T>(fn: () => T): T {
  return requestScope.run({ prefetched: new Map(), afterCommit: [] }, fn);
}

/**
 * Commits the writes the current request held back, if any. Returns false when its consume lost to another request
 * (someone redeemed the code or refresh token first): nothing of the request was written, and the answer must be
 * invalid_grant, not the tokens the library built. Throws what the database throws: the answer is then a 503 and
 * the client retries. (If the connection broke after PostgreSQL committed, the retry finds its token consumed and
 * the grant is revoked as for a reuse: the citizen signs in again. Nothing is ever half-written: it is one statement.)
 */
export async function commitRequest(): Promise<boolean> {
  return (await settleScope(requestScope.getStore(), true)) !== 'refused';
}

/**
 * Drops the writes the current request held back: the request failed after its consume (an error the library threw
 * or answered), so its code or refresh token stays as it was and the client may try again.
 */
export async function discardRequest(): Promise<void> {
  await settleScope(requestScope.getStore(), false);
}

/**
 * Runs `f` once the current request's held-back writes are settled; at once ('committed') when it holds none or runs
 * outside a request scope. For what must not be recorded before the write is (the audit event and metric of issued
 * tokens).
 */
export function afterRequestCommit(f: (outcome: WriteOutcome) => void): void {
  const scope = requestScope.getStore();
  if (scope?.pending) scope.afterCommit.push(f);
  else f('committed');
}

/**
 * The account (with its resident) read with a token earlier in this request, if any, taken once; undefined when none
 * was read (then read it). Never one that is gone or not active: its token was not live (see findPayloads).
 */
export function prefetchedAccount(accountId: string): AccountWithResidentRow | undefined {
  const scope = requestScope.getStore()?.prefetched;
  const key = payloadKey('Account', accountId);
  if (!scope?.has(key)) return undefined;
  const row = scope.get(key) as AccountWithResidentRow;
  scope.delete(key);
  return row;
}

/**
 * Builds the adapter class oidc-provider instantiates once per model name. With a `vault` (the service always has
 * one), bearer artefacts are stored under a keyed hash of their value (see token-at-rest.ts); rows written before
 * that (a rolling deploy) are still found by their plain id until they expire.
 */
export function postgresAdapter(db: Kysely<DB>, vault?: TokenVault): new (model: string) => Adapter {
  const rowId = (model: string, id: string) => vault?.rowId(model, id) ?? id;
  const restored = (model: string, p: Record<string, unknown> | undefined, id?: string) =>
    (p && vault ? vault.restored(model, p, id) : p) as AdapterPayload | undefined;
  /** Whether a row of `model` may also exist under the plain `id` (written before hashing; never a hashed id). */
  const legacy = (model: string, id: string) => !!vault && BEARER_MODELS.has(model) && !id.startsWith(HASHED);
  /**
   * Finds by id wait for the end of the current tick and go to PostgreSQL together, one statement for all of them
   * (introspection looks a token up as three models at once; concurrent requests share it too), with the rows'
   * grants. Each caller's grant goes to its own request's scope.
   */
  type Wanted = {
    keys: string[];
    scope: RequestScope['prefetched'] | undefined;
    done: (row: FoundPayload | undefined) => void;
  };
  let batch: { wanted: Wanted[]; fail: ((err: unknown) => void)[] } | undefined;
  const runBatch = async () => {
    const current = batch;
    batch = undefined;
    if (!current) return;
    const keys = new Map<string, { model: string; id: string }>();
    for (const w of current.wanted)
      for (const k of w.keys) {
        const [model, id] = k.split('\u0000') as [string, string];
        keys.set(k, { model, id });
      }
    let found: Map<string, FoundPayload>;
    try {
      found = await findPayloads(db, [...keys.values()]);
    } catch (err) {
      for (const fail of current.fail) fail(err);
      return;
    }
    // Each waiter gets a row of its own: two requests reading one instance in the same tick must not share an object
    // (the library changes what it reads).
    const handedOut = new Set<FoundPayload>();
    for (const w of current.wanted) {
      let row = w.keys.map((k) => found.get(k)).find((r) => r !== undefined);
      if (row && handedOut.has(row)) row = structuredClone(row);
      else if (row) handedOut.add(row);
      if (row?.grantId && w.scope) w.scope.set(payloadKey('Grant', row.grantId), row.grant);
      if (row && row.account !== undefined && w.scope)
        w.scope.set(payloadKey('Account', String(row.payload.accountId)), row.account);
      w.done(row);
    }
  };
  /** A row by its hashed id, else (rows from before hashing) by the plain one. */
  const findById = (model: string, id: string) =>
    new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
      if (!batch) {
        batch = { wanted: [], fail: [] };
        process.nextTick(runBatch);
      }
      const keys = [payloadKey(model, rowId(model, id))];
      if (legacy(model, id)) keys.push(payloadKey(model, id));
      batch.wanted.push({ keys, scope: requestScope.getStore()?.prefetched, done: (row) => resolve(row?.payload) });
      batch.fail.push(reject);
    });
  /** The grant read with a token earlier in this request, if any (taken once). */
  const prefetchedGrant = (id: string): { payload: AdapterPayload | undefined } | undefined => {
    const scope = requestScope.getStore()?.prefetched;
    const key = payloadKey('Grant', id);
    if (!scope?.has(key)) return undefined;
    const payload = scope.get(key) as AdapterPayload | undefined;
    scope.delete(key);
    return { payload };
  };
  /** A write of `id` in this request makes an earlier read of it stale. */
  const written = (model: string, id: string) => {
    if (model === 'Grant') requestScope.getStore()?.prefetched.delete(payloadKey('Grant', id));
  };
  /**
   * Before anything else the request does with the table: its held-back writes, so that it reads what it wrote and
   * writes in order. A consume that lost is the error it would have been at the consume.
   */
  const settle = async () => {
    const scope = requestScope.getStore();
    const model = scope?.pending?.model;
    if ((await settleScope(scope, true)) === 'refused') throw new errors.InvalidGrant(`${model} already consumed`);
  };
  /** The consume ids of an instance: its row id, and its plain id where a row from before hashing may hold it. */
  const consumeKeys = (model: string, id: string) =>
    legacy(model, id)
      ? [
          { model, id: rowId(model, id) },
          { model, id },
        ]
      : [{ model, id: rowId(model, id) }];
  /** Claims a replay-detection id: undefined the first time (now held), a payload saying "seen" ever after. */
  const claimReplayId = async (id: string): Promise<AdapterPayload | undefined> => {
    const exp = Math.floor(Date.now() / 1000) + REPLAY_CLAIM_SECONDS;
    const claimed = await claimPayload(
      db,
      'ReplayDetection',
      id,
      { jti: id, kind: 'ReplayDetection', exp },
      REPLAY_CLAIM_SECONDS,
    );
    return claimed ? undefined : { jti: id, kind: 'ReplayDetection', exp };
  };
  return class PostgresAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed with `dinhdanh clients`');
      const p = payload as Record<string, unknown>;
      written(this.model, id);
      const stored = vault ? vault.stored(this.model, id, p) : p;
      const pending = requestScope.getStore()?.pending;
      if (pending) {
        // After the request's consume: saved with it, or not at all.
        const row = rowId(this.model, id);
        pending.saves.set(payloadKey(this.model, row), { model: this.model, id: row, payload: stored, expiresIn });
        return;
      }
      await upsertPayload(db, this.model, rowId(this.model, id), stored, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return (await findClientMetadata(db, id)) as AdapterPayload | undefined;
      // A claim reads nothing the request holds back (its save that follows is held with the rest).
      if (this.model === 'ReplayDetection') return claimReplayId(id);
      await settle();
      if (this.model === 'Grant') {
        const prefetched = prefetchedGrant(id);
        if (prefetched) return prefetched.payload;
      }
      return restored(this.model, await findById(this.model, id), id);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      await settle();
      return restored(this.model, await findPayload(db, this.model, 'uid', uid));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      await settle();
      return restored(this.model, await findPayload(db, this.model, 'user_code', userCode));
    }

    async consume(id: string): Promise<void> {
      written(this.model, id);
      const scope = requestScope.getStore();
      if (scope && HELD_CONSUMES.has(this.model)) {
        // Held back with the saves that follow (the new tokens): one statement, one commit, at commitRequest.
        const key = payloadKey(this.model, rowId(this.model, id));
        if (!scope.pending) {
          const pending: PendingWrites = {
            consume: new Map(),
            saves: new Map(),
            model: this.model,
            flush: () =>
              consumeAndSave(db, [...pending.consume.values()].flat(), pending.consume.size, [
                ...pending.saves.values(),
              ]),
          };
          scope.pending = pending;
        }
        if (scope.pending.consume.has(key)) throw new errors.InvalidGrant(`${this.model} already consumed`);
        scope.pending.consume.set(key, consumeKeys(this.model, id));
        return;
      }
      await settle();
      const consumed =
        (await consumePayload(db, this.model, rowId(this.model, id))) ||
        (legacy(this.model, id) && (await consumePayload(db, this.model, id)));
      if (!consumed) throw new errors.InvalidGrant(`${this.model} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      await settle();
      written(this.model, id);
      await destroyPayload(
        db,
        this.model,
        legacy(this.model, id) ? [rowId(this.model, id), id] : [rowId(this.model, id)],
      );
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await settle();
      await revokePayloadsByGrant(db, this.model, grantId);
    }
  };
}

/** The newest live grant a citizen gave a portal, if any. */
export const latestGrantId = selectLatestGrantId;

/** The portals a citizen has granted access to. */
export const listAccountGrants = selectAccountGrants;

/** Revokes one of the citizen's grants with its refresh and access tokens. */
export const revokeAccountGrant = deleteAccountGrant;

/** Deletes expired rows in small batches until none are left; safe to run on every node at once. */
export async function purgeExpired(db: Kysely<DB>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await purgeExpiredPayloads(db);
    total += n;
    if (n === 0) return total;
  }
}
