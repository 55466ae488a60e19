/** Queries over `passkeys` and `passkey_challenges`. */
import type { Kysely, Selectable } from 'kysely';
import type { DB } from '../db/index.ts';

/** A stored passkey, as the service sees it. */
export interface PasskeyRecord {
  id: string;
  accountId: string;
  publicKey: Uint8Array;
  signCount: number;
  transports: string[];
  aaguid: string;
  backupEligible: boolean;
  backedUp: boolean;
  level: number;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  cloneSuspectedAt: Date | null;
}

type Row = DB['passkeys'];

const toRecord = (r: Selectable<Row>): PasskeyRecord => ({
  id: r.id,
  accountId: r.account_id,
  publicKey: new Uint8Array(r.public_key),
  signCount: Number(r.sign_count),
  transports: r.transports,
  aaguid: r.aaguid,
  backupEligible: r.backup_eligible,
  backedUp: r.backed_up,
  level: r.level,
  name: r.name,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  cloneSuspectedAt: r.clone_suspected_at,
});

export async function selectPasskeys(db: Kysely<DB>, accountId: string): Promise<PasskeyRecord[]> {
  const rows = await db
    .selectFrom('passkeys')
    .selectAll()
    .where('account_id', '=', accountId)
    .orderBy('created_at')
    .execute();
  return rows.map(toRecord);
}

export async function selectPasskey(db: Kysely<DB>, id: string): Promise<PasskeyRecord | undefined> {
  const r = await db.selectFrom('passkeys').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toRecord(r);
}

export async function countPasskeys(db: Kysely<DB>, accountId: string): Promise<number> {
  const r = await db
    .selectFrom('passkeys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Inserts a passkey unless the account already has `max` (checked under a lock on the account row). */
export async function insertPasskey(
  db: Kysely<DB>,
  p: Omit<PasskeyRecord, 'createdAt' | 'lastUsedAt' | 'cloneSuspectedAt'>,
  max: number,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await trx.selectFrom('accounts').select('id').where('id', '=', p.accountId).forUpdate().executeTakeFirst();
    if ((await countPasskeys(trx, p.accountId)) >= max) return false;
    await trx
      .insertInto('passkeys')
      .values({
        id: p.id,
        account_id: p.accountId,
        public_key: Buffer.from(p.publicKey),
        sign_count: p.signCount,
        transports: p.transports,
        aaguid: p.aaguid,
        backup_eligible: p.backupEligible,
        backed_up: p.backedUp,
        level: p.level,
        name: p.name,
      })
      .execute();
    return true;
  });
}

/** Records a use: the new counter only if it moved forward (a racing older answer cannot roll it back). */
export async function markPasskeyUsed(db: Kysely<DB>, id: string, signCount: number, backedUp: boolean) {
  await db
    .updateTable('passkeys')
    .set((eb) => ({
      sign_count: eb.fn('greatest', [eb.ref('sign_count'), eb.val(signCount)]),
      backed_up: backedUp,
      last_used_at: new Date(),
    }))
    .where('id', '=', id)
    .execute();
}

export async function markCloneSuspected(db: Kysely<DB>, id: string): Promise<void> {
  await db.updateTable('passkeys').set({ clone_suspected_at: new Date() }).where('id', '=', id).execute();
}

export async function renamePasskeyRow(db: Kysely<DB>, accountId: string, id: string, name: string) {
  const r = await db
    .updateTable('passkeys')
    .set({ name })
    .where('id', '=', id)
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

export async function deletePasskeyRow(db: Kysely<DB>, accountId: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom('passkeys').where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

/** Stores (or replaces) the challenge for a binding. */
export async function putChallenge(
  db: Kysely<DB>,
  binding: string,
  challenge: string,
  accountId: string | null,
  expiresAt: Date,
): Promise<void> {
  await db
    .insertInto('passkey_challenges')
    .values({ binding, challenge, account_id: accountId, expires_at: expiresAt })
    .onConflict((oc) => oc.column('binding').doUpdateSet({ challenge, account_id: accountId, expires_at: expiresAt }))
    .execute();
}

/** Takes the binding's challenge (single use): deleted whether or not the answer turns out valid. */
export async function takeChallenge(
  db: Kysely<DB>,
  binding: string,
): Promise<{ challenge: string; accountId: string | null } | undefined> {
  const r = await db
    .deleteFrom('passkey_challenges')
    .where('binding', '=', binding)
    .returning(['challenge', 'account_id', 'expires_at'])
    .executeTakeFirst();
  return r && r.expires_at > new Date() ? { challenge: r.challenge, accountId: r.account_id } : undefined;
}
