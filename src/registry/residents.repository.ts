/** Queries over `residents`. */
import type { Kysely, Selectable } from 'kysely';
import type { DB, Residence, ResidentTable } from '../db/index.ts';

/** A resident as the rest of dinhdanh sees them. */
export interface Resident {
  id: string;
  pin: string;
  fullName: string;
  familyName: string;
  middleName: string | null;
  givenName: string;
  birthDate: string;
  sex: 'male' | 'female';
  nationality: string;
  placeOfOrigin: string | null;
  permanentResidence: Residence | null;
  currentResidence: Residence | null;
  status: string;
  /** Registered mobile phone number, E.164 (`+84` and 9 digits); null when the registry has none. */
  phone: string | null;
}

/** What is needed to insert a resident (no phone: null). */
export type NewResident = Omit<Resident, 'id' | 'status' | 'nationality' | 'phone'> & {
  status?: string;
  nationality?: string;
  phone?: string | null;
};

/**
 * The columns that `residents` and a registry file (import.columns.ts) both hold, with the same values, in this order
 * in both; around them the table has `id` and residences as JSON, the file `previous_pin` and residences split.
 */
export const PERSON_COLUMNS = [
  'full_name',
  'family_name',
  'middle_name',
  'given_name',
  'birth_date',
  'sex',
  'nationality',
  'place_of_origin',
] as const;

/** A new resident's PERSON_COLUMNS values (nationality defaults to VN), for a row or a registry record. */
export function personColumns(r: NewResident) {
  return {
    full_name: r.fullName,
    family_name: r.familyName,
    middle_name: r.middleName,
    given_name: r.givenName,
    birth_date: r.birthDate,
    sex: r.sex,
    nationality: r.nationality ?? 'VN',
    place_of_origin: r.placeOfOrigin,
  } satisfies Record<(typeof PERSON_COLUMNS)[number], string | null>;
}

/** Inserts residents whose number is not yet present; returns how many were inserted. */
export async function insertResidents(db: Kysely<DB>, rows: NewResident[]): Promise<number> {
  if (!rows.length) return 0;
  const res = await db
    .insertInto('residents')
    .values(
      rows.map((r) => ({
        pin: r.pin,
        ...personColumns(r),
        permanent_residence: r.permanentResidence ? JSON.stringify(r.permanentResidence) : null,
        current_residence: r.currentResidence ? JSON.stringify(r.currentResidence) : null,
        status: r.status ?? 'active',
        phone: r.phone ?? null,
      })),
    )
    .onConflict((oc) => oc.column('pin').doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n);
}

/** Every column a Resident needs. */
export const residentColumns = [
  'id',
  'pin',
  ...PERSON_COLUMNS,
  'permanent_residence',
  'current_residence',
  'status',
  'phone',
] as const;

/** Finds a resident by internal id or by number. */
export async function selectResident(
  db: Kysely<DB>,
  by: { id: string } | { pin: string },
): Promise<Resident | undefined> {
  let q = db.selectFrom('residents').select(residentColumns);
  q = 'id' in by ? q.where('id', '=', by.id) : q.where('pin', '=', by.pin);
  const r = await q.executeTakeFirst();
  return r && toResident(r);
}

/** The columns of a resident, as selected by `residentColumns` (also usable in joins by other repositories). */
export type ResidentRow = Pick<Selectable<ResidentTable>, (typeof residentColumns)[number]>;

/** Maps a row to the domain type. */
export function toResident(r: ResidentRow): Resident {
  return {
    id: r.id,
    pin: r.pin,
    fullName: r.full_name,
    familyName: r.family_name,
    middleName: r.middle_name,
    givenName: r.given_name,
    birthDate: r.birth_date,
    sex: r.sex,
    nationality: r.nationality,
    placeOfOrigin: r.place_of_origin,
    permanentResidence: r.permanent_residence,
    currentResidence: r.current_residence,
    status: r.status,
    phone: r.phone,
  };
}

/** Number of residents. */
export async function countResidents(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('residents')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
