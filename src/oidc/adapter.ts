/**
 * oidc-provider storage adapter over PostgreSQL.
 *
 * Threat note: this table holds sessions, grants, codes and tokens. `consume` is atomic (a conditional UPDATE), so
 * when two nodes race to redeem one authorization code or refresh token exactly one wins and the other gets
 * invalid_grant. Expired rows are invisible to `find` even before the purge job deletes them. Clients are not stored
 * here: the `Client` model reads the `clients` table through the clients domain.
 */
import type { Kysely } from 'kysely';
import { type Adapter, type AdapterPayload, errors } from 'oidc-provider';
import { findClientMetadata } from '../clients/index.ts';
import type { DB } from '../db/index.ts';
import {
  consumePayload,
  deleteAccountGrant,
  destroyPayload,
  findPayload,
  purgeExpiredPayloads,
  revokePayloadsByGrant,
  selectAccountGrants,
  upsertPayload,
} from './adapter.repository.ts';

/** Builds the adapter class oidc-provider instantiates once per model name. */
export function postgresAdapter(db: Kysely<DB>): new (model: string) => Adapter {
  return class PostgresAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed with `dinhdanh clients`');
      await upsertPayload(db, this.model, id, payload as Record<string, unknown>, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return (await findClientMetadata(db, id)) as AdapterPayload | undefined;
      return (await findPayload(db, this.model, 'id', id)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await findPayload(db, this.model, 'uid', uid)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await findPayload(db, this.model, 'user_code', userCode)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      if (!(await consumePayload(db, this.model, id))) {
        throw new errors.InvalidGrant(`${this.model} already consumed`);
      }
    }

    async destroy(id: string): Promise<void> {
      await destroyPayload(db, this.model, id);
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
