/**
 * Audit search for staff: newest first, by subject, actor, action, portal and time, one page at a time (a cursor is
 * the last `seq` seen). Each filter has an index that starts with its column (subject, actor_id, action, client_id;
 * `at` alone), so a page costs an index range scan however long the trail.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';

/** What to look for; every filter given must match. */
export interface AuditQuery {
  /** Any of these subjects (an account id, a personal ID's pseudonym, a client id...). */
  subjects?: string[];
  actorId?: string;
  actorType?: string;
  action?: string;
  clientId?: string;
  since?: Date;
  until?: Date;
  /** Events older than this `seq` (the previous page's cursor). */
  before?: number;
  limit: number;
}

/** An event as the admin API shows it. */
export interface AuditEntry {
  seq: number;
  at: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  outcome: string;
  subject: string | null;
  client_id: string | null;
  ip: string | null;
  reason: string | null;
  details: Record<string, unknown>;
}

/** One page of events, newest first, and the cursor of the next page (null: this was the last). */
export async function searchAudit(
  db: Kysely<DB>,
  q: AuditQuery,
): Promise<{ items: AuditEntry[]; next_cursor: string | null }> {
  let s = db
    .selectFrom('audit_events')
    .select([
      'seq',
      'at',
      'actor_type',
      'actor_id',
      'action',
      'outcome',
      'subject',
      'client_id',
      'ip',
      'reason',
      'details',
    ]);
  if (q.subjects) s = s.where('subject', 'in', q.subjects.length ? q.subjects : ['']);
  if (q.actorId) s = s.where('actor_id', '=', q.actorId);
  if (q.actorType) s = s.where('actor_type', '=', q.actorType);
  if (q.action) s = s.where('action', '=', q.action);
  if (q.clientId) s = s.where('client_id', '=', q.clientId);
  if (q.since) s = s.where('at', '>=', q.since);
  if (q.until) s = s.where('at', '<', q.until);
  if (q.before !== undefined) s = s.where('seq', '<', String(q.before) as never);
  const rows = await s
    .orderBy('seq', 'desc')
    .limit(q.limit + 1)
    .execute();
  const items = rows.slice(0, q.limit).map((r) => ({
    seq: Number(r.seq),
    at: new Date(r.at as unknown as string).toISOString(),
    actor_type: r.actor_type,
    actor_id: r.actor_id,
    action: r.action,
    outcome: r.outcome,
    subject: r.subject,
    client_id: r.client_id,
    ip: r.ip,
    reason: r.reason,
    details: r.details as Record<string, unknown>,
  }));
  return { items, next_cursor: rows.length > q.limit ? String(items.at(-1)!.seq) : null };
}
