/**
 * An audited operator command: the act and its audit event commit in one transaction, or neither does. A failed
 * audit write undoes the act; a failed act writes no event. The event is written last, so the audit chain's lock is
 * held only for the moment before the commit.
 */
import type { Kysely, Transaction } from 'kysely';
import { type AuditEvent, recordEvent } from '../audit/index.ts';
import type { DB } from '../db/index.ts';

/** What an act returns: the command's result, and what its event says. */
export interface Act<T> {
  result: T;
  subject?: string | null;
  clientId?: string | null;
  details?: Record<string, unknown>;
  /**
   * Work that cannot join the transaction (a library on its own connections): run once the event is written and
   * before the commit, so a failed audit write leaves it undone and its failure rolls the act and the event back.
   * Only a failed commit after it could leave it unaudited.
   */
  outside?: () => Promise<void>;
}

/**
 * Opens a transaction, runs `act` in it, records a successful `action` by `actor` in the same transaction and
 * commits both; returns the act's result. An act that finds nothing to do or is refused throws (nothing is written).
 */
export async function audited<T>(
  db: Kysely<DB>,
  actor: AuditEvent['actor'],
  action: string,
  act: (trx: Transaction<DB>) => Promise<Act<T>>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const { result, outside, ...about } = await act(trx);
    await recordEvent(trx, { actor, action, outcome: 'success', ...about });
    await outside?.();
    return result;
  });
}
