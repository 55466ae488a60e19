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
import type { Kysely } from 'kysely';
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import { findClientMetadata } from '../clients/index.ts';
import type { DB } from '../db/index.ts';
import {
  claimPayload,
  consumePayload,
  deleteAccountGrant,
  destroyPayload,
  findPayload,
  purgeExpiredPayloads,
  revokePayloadsByGrant,
  selectAccountGrants,
  upsertPayload,
} from './adapter.repository.ts';
import { BEARER_MODELS, HASHED, type TokenVault } from './token-at-rest.ts';

/**
 * How long a claimed replay-detection id is held before oidc-provider's save gives it the real expiry (the assertion's
 * or proof's own lifetime); a claim whose save never came (the request failed) is released after this.
 */
const REPLAY_CLAIM_SECONDS = 600;

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
  /** A row by its hashed id, else (rows from before hashing) by the plain one. */
  const findById = async (model: string, id: string) => {
    const found = await findPayload(db, model, 'id', rowId(model, id));
    return found || !legacy(model, id) ? found : findPayload(db, model, 'id', id);
  };
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
      await upsertPayload(
        db,
        this.model,
        rowId(this.model, id),
        vault ? vault.stored(this.model, id, p) : p,
        expiresIn,
      );
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return (await findClientMetadata(db, id)) as AdapterPayload | undefined;
      if (this.model === 'ReplayDetection') return claimReplayId(id);
      return restored(this.model, await findById(this.model, id), id);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return restored(this.model, await findPayload(db, this.model, 'uid', uid));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return restored(this.model, await findPayload(db, this.model, 'user_code', userCode));
    }

    async consume(id: string): Promise<void> {
      const consumed =
        (await consumePayload(db, this.model, rowId(this.model, id))) ||
        (legacy(this.model, id) && (await consumePayload(db, this.model, id)));
      if (!consumed) throw new errors.InvalidGrant(`${this.model} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      await destroyPayload(db, this.model, rowId(this.model, id));
      if (legacy(this.model, id)) await destroyPayload(db, this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await revokePayloadsByGrant(db, this.model, grantId);
    }
  };
}

/** The newest live grant a citizen gave a portal, if any. */
export async function latestGrantId(db: Kysely<DB>, accountId: string, clientId: string): Promise<string | undefined> {
  const grants = await selectAccountGrants(db, accountId);
  return grants.find((g) => g.clientId === clientId)?.grantId;
}

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
