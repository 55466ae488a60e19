/** The notice of a password reset, shown once at the citizen's next sign-in. */
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { markResetTold, selectRegisteredPhone, selectUntoldReset } from './accounts.repository.ts';

/** The phone registered to the account's resident (for notices), or null. */
export const registeredPhone = selectRegisteredPhone;

export const resetNotice = {
  /** The reset the citizen has not been told about yet, if any. */
  async pending(db: Kysely<DB>, accountId: string) {
    const r = await selectUntoldReset(db, accountId);
    return r?.at ? { at: r.at, via: (r.via === 'officer' ? 'officer' : 'sms') as 'sms' | 'officer', ip: r.ip } : null;
  },
  /** Marks it told. */
  told: (db: Kysely<DB>, accountId: string) => markResetTold(db, accountId),
};
