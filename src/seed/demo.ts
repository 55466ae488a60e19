/**
 * Demo data for a fresh installation: a few synthetic residents (the project ships no real personal data), one
 * enrolled citizen and one public demo portal. Idempotent: running it twice changes nothing.
 */
import { type Kysely, sql } from 'kysely';
import { countAccounts, createAccount } from '../accounts/index.ts';
import { addClient, findClientMetadata } from '../clients/index.ts';
import type { PasswordHasher } from '../credentials/index.ts';
import type { DB } from '../db/index.ts';
import { findResident, insertResidents, type NewResident } from '../registry/index.ts';

/** The demo citizen's login and the demo portal, printed at start. */
export const DEMO = {
  pin: '001090012345',
  password: 'demo-password-2026',
  /** The demo citizen's registered mobile number (synthetic), where enrollment sends its one-time code. */
  phone: '+84912345678',
  clientId: 'demo-portal',
  redirectUri: 'http://localhost:3001/callback',
} as const;

const residents: NewResident[] = [
  {
    pin: DEMO.pin,
    fullName: 'Nguyễn Văn An',
    familyName: 'Nguyễn',
    middleName: 'Văn',
    givenName: 'An',
    birthDate: '1990-05-12',
    sex: 'male',
    placeOfOrigin: 'Hà Nội',
    permanentResidence: { province: 'Hà Nội', ward: 'Phường Hàng Bạc', street: '12 Hàng Bạc' },
    currentResidence: { province: 'Hà Nội', ward: 'Phường Hàng Bạc', street: '12 Hàng Bạc' },
    phone: DEMO.phone,
  },
  {
    pin: '079195004321',
    fullName: 'Trần Thị Bích Ngọc',
    familyName: 'Trần',
    middleName: 'Thị Bích',
    givenName: 'Ngọc',
    birthDate: '1995-11-03',
    sex: 'female',
    placeOfOrigin: 'Hồ Chí Minh',
    permanentResidence: { province: 'Hồ Chí Minh', ward: 'Phường Bến Nghé', street: '45 Lê Lợi' },
    currentResidence: null,
    phone: '+84987654321',
  },
  {
    pin: '048203000777',
    fullName: 'Lê Minh Khoa',
    familyName: 'Lê',
    middleName: 'Minh',
    givenName: 'Khoa',
    birthDate: '2003-02-28',
    sex: 'male',
    placeOfOrigin: 'Đà Nẵng',
    permanentResidence: { province: 'Đà Nẵng', ward: 'Phường Hải Châu 1', street: '8 Bạch Đằng' },
    currentResidence: null,
  },
];

/** Seeds the demo data; returns what was created. */
export async function seedDemo(
  db: Kysely<DB>,
  hasher: PasswordHasher,
): Promise<{ residents: number; account: boolean; client: boolean }> {
  // Nodes starting together on one database seed one at a time. Inside a caller's transaction (the audited CLI
  // command) it joins it, so the seed and its audit event commit together.
  const run = async (trx: Kysely<DB>) => {
    await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:seed'))`.execute(trx);
    return seedWith(trx, hasher);
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

async function seedWith(db: Kysely<DB>, hasher: PasswordHasher) {
  const inserted = await insertResidents(db, residents);
  const resident = await findResident(db, { pin: DEMO.pin });
  let account = false;
  if (resident && (await countAccounts(db)) === 0) {
    await createAccount(db, hasher, { pin: DEMO.pin, password: DEMO.password, email: 'an.nguyen@example.vn' });
    account = true;
  }
  let client = false;
  if (!(await findClientMetadata(db, DEMO.clientId))) {
    await addClient(db, {
      clientId: DEMO.clientId,
      name: 'Cổng dịch vụ công (demo)',
      redirectUris: [DEMO.redirectUri],
      postLogoutRedirectUris: ['http://localhost:3001/'],
      tokenEndpointAuthMethod: 'none',
    });
    client = true;
  }
  return { residents: inserted, account, client };
}
