/**
 * An audited staff act (CLI, admin API, console): the act and its audit event commit in one transaction, or neither does. A failed
 * audit write undoes the act; a failed act writes no event. The event is written last, so the audit chain's lock is
 * held only for the moment before the commit.
 */
import type { Kysely, Transaction } from 'kysely';
import type { DB } from '../db/index.ts';
import { type ActorType, recordEvent } from './audit.service.ts';

/**
 * Who acts: a staff member (their account id and the role they act in), a machine caller (a client with admin scopes),
 * or an operator on the host (the CLI: a name). `via` and `role` go into the event's details, `ip` into its column.
 */
export interface Actor {
  type: ActorType;
  id: string;
  role?: string;
  ip?: string;
  via?: 'cli' | 'api' | 'console';
}

/** What an actor adds to an event's details. */
export const actorDetails = (a: Actor): Record<string, unknown> => ({
  ...(a.role ? { role: a.role } : {}),
  ...(a.via ? { via: a.via } : {}),
});

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
  actor: Actor,
  action: string,
  act: (trx: Transaction<DB>) => Promise<Act<T>>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const { result, outside, details, ...about } = await act(trx);
    await recordEvent(trx, {
      actor: { type: actor.type, id: actor.id },
      action,
      outcome: 'success',
      ip: actor.ip,
      ...about,
      details: { ...details, ...actorDetails(actor) },
    });
    await outside?.();
    return result;
  });
}
