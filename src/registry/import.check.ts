/**
 * Reading one line of a registry file: decode (strict UTF-8), skip blanks, check the CSV header, parse, validate.
 */
import { AppError } from '../errors.ts';
import { COLUMNS, type RegistryFormat } from './import.columns.ts';
import type { RawLine } from './import.lines.ts';
import {
  csvHeaderColumns,
  isCleanLine,
  type LineResult,
  parseCsvLine,
  parseNdjsonLine,
  type StagedResident,
  validateRecord,
} from './import.validate.ts';

/** Longest line accepted, in bytes (longer lines are rejected; only their first 64 KiB are kept for the report). */
export const MAX_LINE_BYTES = 64 * 1024;

/** A checked line: a resident (with the line's text as read), or why it is rejected. */
export type Checked = { ok: true; resident: StagedResident; text: string } | { ok: false; reason: string };

/**
 * Checks lines in file order: a resident, a reason to reject, or null (blank line, CSV header). `today`
 * (YYYY-MM-DD) bounds birth dates. Throws when the CSV header is wrong; `end()` throws when it never came. A CSV
 * header without `phone` (a feed from before it) is accepted: its lines have one field less.
 */
export function lineChecker(format: RegistryFormat, today: string) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let columns: number = COLUMNS.length; // as the CSV header names them
  const parse = format === 'csv' ? (text: string) => parseCsvLine(text, columns) : parseNdjsonLine;
  let needHeader = format === 'csv';
  const check = (raw: RawLine): Checked | null => {
    if (raw.tooLong) return { ok: false, reason: `line_too_long: over ${MAX_LINE_BYTES} bytes` };
    if (!raw.bytes.length) return null;
    let text: string;
    try {
      text = decoder.decode(raw.bytes);
    } catch {
      return { ok: false, reason: 'invalid_utf8' };
    }
    if (!text.trim()) return null;
    if (needHeader) {
      columns = csvHeaderColumns(text);
      if (!columns)
        throw new AppError('invalid_input', `line ${raw.number}: the CSV header must be ${COLUMNS.join(',')}`);
      needHeader = false;
      return null;
    }
    // Fast path: one control-character check and one NFC pass for the whole line (JSON escapes excepted).
    const clean = (format === 'csv' || !text.includes('\\')) && isCleanLine(text);
    const fields = parse(clean ? text.normalize('NFC') : text);
    if (typeof fields === 'string') return { ok: false, reason: fields };
    const r: LineResult = validateRecord(fields, raw.number, today, clean);
    return r.ok ? { ok: true, resident: r.resident, text } : r;
  };
  /** Throws when the input ended before a CSV header. */
  check.end = () => {
    if (needHeader) throw new AppError('invalid_input', `the CSV header is missing: ${COLUMNS.join(',')}`);
  };
  return check;
}
