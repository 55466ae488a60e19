/**
 * The registry file format shared by `importResidents` and `generateResidents`: one record per line, CSV (with a
 * header naming exactly these columns, in this order) or NDJSON (one JSON object per line with these keys).
 * Residence districts stay in the format for older feeds; since the 2025 reform they are usually empty. `phone` came
 * last, in 2026: a CSV header without it (LEGACY_COLUMNS) is still read, its lines one field shorter.
 */
import { type NewResident, PERSON_COLUMNS, personColumns } from './residents.repository.ts';

/** Columns of a registry file, in CSV order. */
export const COLUMNS = [
  'pin',
  'previous_pin',
  ...PERSON_COLUMNS,
  'permanent_province',
  'permanent_district',
  'permanent_ward',
  'permanent_street',
  'current_province',
  'current_district',
  'current_ward',
  'current_street',
  'status',
  'phone',
] as const;

/** Columns of a CSV file written before `phone` existed: the same, without the last. */
export const LEGACY_COLUMNS = COLUMNS.slice(0, -1);

/** One column name. */
export type Column = (typeof COLUMNS)[number];

/** One line of a registry file, as text fields (null or '' when empty). */
export type RegistryRecord = Record<Column, string | null>;

/** A file format the importer reads and the generator writes. */
export type RegistryFormat = 'csv' | 'ndjson';

/** The record for a resident (the inverse of the importer's parsing). */
export function recordOf(r: NewResident & { previousPin?: string | null }): RegistryRecord {
  const p = r.permanentResidence;
  const c = r.currentResidence;
  return {
    pin: r.pin,
    previous_pin: r.previousPin ?? null,
    ...personColumns(r),
    permanent_province: p?.province ?? null,
    permanent_district: p?.district ?? null,
    permanent_ward: p?.ward ?? null,
    permanent_street: p?.street ?? null,
    current_province: c?.province ?? null,
    current_district: c?.district ?? null,
    current_ward: c?.ward ?? null,
    current_street: c?.street ?? null,
    status: r.status ?? 'active',
    phone: r.phone ?? null,
  };
}

const csvField = (v: string | null) => (v === null ? '' : /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** The CSV header line, with its newline. */
export const CSV_HEADER = `${COLUMNS.join(',')}\n`;

/** A record as one line of the given format, with its newline. */
export function formatRecord(record: RegistryRecord, format: RegistryFormat): string {
  if (format === 'ndjson') return `${JSON.stringify(record)}\n`;
  return `${COLUMNS.map((c) => csvField(record[c])).join(',')}\n`;
}
