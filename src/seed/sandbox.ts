/**
 * Test citizens for sandbox portals: synthetic residents flagged `test_citizen`, with accounts at level 1 and level 2
 * whose credentials are published to every agency admin (the console's agency area), so that an agency can try its
 * portal end to end without anyone's help. A sandbox portal may sign in these and no one else (oidc/provider.ts).
 * Idempotent; the level-2 account reaches level 2 the way a citizen does (in-person code, TOTP).
 */
import { type Kysely, sql } from 'kysely';
import {
  confirmTotp,
  createAccount,
  issueActivationCode,
  redeemActivationCode,
  startTotpEnrollment,
} from '../accounts/index.ts';
import { currentTotp, type PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { insertResidents, type NewResident } from '../registry/index.ts';

const WARD = { province: 'Hà Nội', ward: 'Phường Thử Nghiệm', street: '1 Đường Thử Nghiệm' };

/**
 * The test citizens. Their personal IDs carry province code 000, which no province has (Circular 59/2021): no real
 * resident can ever hold one (a registry import rejects it as `unknown_province`), so the published passwords can never
 * open a real person's account, whatever the registry later brings.
 */
const TEST_CITIZENS: (NewResident & { level: 1 | 2; password: string })[] = [
  {
    pin: '000099000001',
    fullName: 'Công Dân Thử Một',
    familyName: 'Công',
    middleName: 'Dân Thử',
    givenName: 'Một',
    birthDate: '1999-01-01',
    sex: 'male',
    placeOfOrigin: 'Hà Nội',
    permanentResidence: WARD,
    currentResidence: WARD,
    phone: '+84900000001',
    level: 1,
    password: 'sandbox-level1-2026',
  },
  {
    pin: '000194000002',
    fullName: 'Công Dân Thử Hai',
    familyName: 'Công',
    middleName: 'Dân Thử',
    givenName: 'Hai',
    birthDate: '1994-02-02',
    sex: 'female',
    placeOfOrigin: 'Hà Nội',
    permanentResidence: WARD,
    currentResidence: WARD,
    phone: '+84900000002',
    level: 2,
    password: 'sandbox-level2-2026',
  },
];

/** A test citizen as shown to agency admins. */
export interface TestCitizen {
  personal_id: string;
  full_name: string;
  birth_date: string;
  level: number;
  password: string;
  /** Level 2: the TOTP secret (base32), for an authenticator app or a test's code generator. */
  totp_secret: string | null;
}

/** Creates the test citizens that do not exist yet. */
export async function ensureTestCitizens(db: Kysely<DB>, hasher: PasswordHasher, master: Buffer): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:sandbox'))`.execute(trx);
    let created = 0;
    for (const c of TEST_CITIZENS) {
      const exists = await trx
        .selectFrom('sandbox_citizens')
        .innerJoin('residents', 'residents.id', 'sandbox_citizens.resident_id')
        .select('residents.id')
        .where('residents.pin', '=', c.pin)
        .executeTakeFirst();
      if (exists) continue;
      const { level, password, ...resident } = c;
      await insertResidents(trx, [resident]);
      const row = await trx
        .updateTable('residents')
        .set({ test_citizen: true })
        .where('pin', '=', c.pin)
        .returning('id')
        .executeTakeFirstOrThrow();
      const accountId =
        (await trx.selectFrom('accounts').select('id').where('resident_id', '=', row.id).executeTakeFirst())?.id ??
        (await createAccount(trx, hasher, { pin: c.pin, password }));
      let totp: string | null = null;
      if (level === 2) {
        const { code } = await issueActivationCode(trx, c.pin, 'sandbox');
        const who = { sessionUid: 'sandbox-setup', level2Session: false, validMs: 60_000 };
        await redeemActivationCode(trx, accountId, code, who.sessionUid);
        totp = await startTotpEnrollment(trx, master, accountId, who);
        // Confirmed with the previous step's code, so the citizen's first real code (this step's) is still unused.
        await confirmTotp(
          trx,
          master,
          accountId,
          await currentTotp(totp, (Math.floor(Date.now() / 30000) - 1) * 30),
          who,
        );
      }
      await trx.insertInto('sandbox_citizens').values({ resident_id: row.id, password, totp_secret: totp }).execute();
      created++;
    }
    return created;
  });
}

/** The published test citizens. */
export async function listTestCitizens(db: Kysely<DB>): Promise<TestCitizen[]> {
  const rows = await db
    .selectFrom('sandbox_citizens')
    .innerJoin('residents', 'residents.id', 'sandbox_citizens.resident_id')
    .leftJoin('accounts', 'accounts.resident_id', 'residents.id')
    .select([
      'residents.pin',
      'residents.full_name',
      'residents.birth_date',
      'accounts.level',
      'sandbox_citizens.password',
      'sandbox_citizens.totp_secret',
    ])
    .orderBy('residents.pin')
    .execute();
  return rows.map((r) => ({
    personal_id: r.pin,
    full_name: r.full_name,
    birth_date: String(r.birth_date),
    level: r.level ?? 0,
    password: r.password,
    totp_secret: r.totp_secret,
  }));
}

/** Whether an account belongs to a test citizen. */
export async function isTestCitizen(db: Kysely<DB>, accountId: string): Promise<boolean> {
  const r = await db
    .selectFrom('accounts')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select('residents.test_citizen')
    .where('accounts.id', '=', accountId)
    .executeTakeFirst();
  return r?.test_citizen === true;
}
