/** The notice of a password reset, shown once at the citizen's next sign-in. */
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { markResetTold, selectRegisteredPhone, selectUntoldReset } from './accounts.repository.ts';

/** The phone registered to the account's resident (for notices), or null. */
export const registeredPhone = selectRegisteredPhone;

/** The notice of a reset the citizen has not been told about yet. */
export interface PendingResetNotice {
  at: Date;
  via: 'sms' | 'officer';
  ip: string | null;
}

/** The notice for an untold reset as stored (the login record reads it too), or null. */
export const noticeOf = (r: { at: Date | null; via: string | null; ip: string | null } | null | undefined) =>
  r?.at ? ({ at: r.at, via: r.via === 'officer' ? 'officer' : 'sms', ip: r.ip } satisfies PendingResetNotice) : null;

export const resetNotice = {
  /** The reset the citizen has not been told about yet, if any. */
  async pending(db: Kysely<DB>, accountId: string): Promise<PendingResetNotice | null> {
    return noticeOf(await selectUntoldReset(db, accountId));
  },
  /** Marks it told. */
  told: (db: Kysely<DB>, accountId: string) => markResetTold(db, accountId),
};
