/**
 * The statements this process sends to PostgreSQL, seen on every pg client (pools, transactions, prepared or not):
 * for tests that pin how many statements a request makes, or look at the plan of the one it sent.
 */
import pg from 'pg';

/** One statement as sent: its name when prepared, its text and its values. */
export interface SentStatement {
  name?: string;
  text: string;
  values: unknown[];
}

/** Runs `f`; returns its result and the statements sent meanwhile, in order. */
export async function statementsOf<T>(f: () => Promise<T>): Promise<[T, SentStatement[]]> {
  const sent: SentStatement[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const q = args[0] as { name?: string; text?: string; values?: unknown[] } | string;
    const values = (args[1] as unknown[] | undefined) ?? [];
    if (typeof q === 'string') sent.push({ text: q, values });
    else if (q && typeof q === 'object') sent.push({ name: q.name, text: q.text ?? '', values: q.values ?? values });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    return [await f(), sent];
  } finally {
    pg.Client.prototype.query = original;
  }
}

/** A statement's name when prepared, else its text on one line. */
export const labelOf = (s: SentStatement): string => (s.name ?? s.text).replace(/\s+/g, ' ').trim();
