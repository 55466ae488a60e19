/**
 * Queries over `audit_events` (partitioned by month on `at`: see partitions.repository.ts) and `audit_checkpoints`.
 * Appends are serialized by an advisory lock.
 */
import { type Kysely, type Selectable, sql } from 'kysely';
import { type DB, runPrepared } from '../db/index.ts';
import { type ChainedContent, canonicalAroundAtAndSeq } from './chain.ts';
import { removeArchived } from './partitions.repository.ts';

/** A stored event: its content and both hashes. */
export interface StoredEvent extends ChainedContent {
  prevHash: string;
  hash: string;
}

const LOCK = sql`select pg_advisory_xact_lock(hashtext('dinhdanh:audit'))`;

/** Column arrays, one element per event (no per-value query building), and each event's canonical JSON around `at`
 * and `seq`. */
const APPEND = `select out_seq, out_at, out_prev_hash, out_hash from audit_append($1::timestamptz[], $2::text[],
  $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[],
  $12::text[], $13::text[], $14::text[])`;

/** Appends one event at the end of the chain (in the caller's transaction, if it has one). */
export async function appendEvent(db: Kysely<DB>, e: Omit<ChainedContent, 'seq' | 'at'>): Promise<StoredEvent> {
  return (await appendEvents(db, [e]))[0]!;
}

/**
 * Appends events in order, in one statement (the database function `audit_append` takes the chain's lock, reads the
 * last link, numbers, times and hashes the events and inserts them; in the caller's transaction, if it has one, and
 * under its lock until that commits). Each event's time is the database's clock under the lock (so `at` never goes
 * back as `seq` goes on), unless `clock` gives it (tests place events in chosen months).
 */
export async function appendEvents(
  db: Kysely<DB>,
  events: Omit<ChainedContent, 'seq' | 'at'>[],
  clock?: () => Date,
): Promise<StoredEvent[]> {
  if (!events.length) return [];
  const parts = events.map(canonicalAroundAtAndSeq);
  const column = <K extends keyof (typeof events)[number]>(k: K) => events.map((e) => e[k]);
  const { rows: links } = await runPrepared<{ out_seq: string; out_at: Date; out_prev_hash: string; out_hash: string }>(
    db,
    'audit_append',
    APPEND,
    [
      events.map(() => clock?.() ?? null),
      column('actorType'),
      column('actorId'),
      column('action'),
      column('subject'),
      column('clientId'),
      column('ip'),
      column('userAgent'),
      column('outcome'),
      column('reason'),
      events.map((e) => JSON.stringify(e.details)),
      parts.map(([p0]) => p0),
      parts.map(([, p1]) => p1),
      parts.map(([, , p2]) => p2),
    ],
  );
  return events.map((e, i) => ({
    ...e,
    seq: Number(links[i]!.out_seq),
    at: links[i]!.out_at,
    prevHash: links[i]!.out_prev_hash,
    hash: links[i]!.out_hash,
  }));
}

/** A stored row, as the table defines it (`seq` is a bigint: a string). */
type Row = Selectable<DB['audit_events']>;

function toEvent(r: Row): StoredEvent {
  return {
    seq: Number(r.seq),
    at: r.at,
    actorType: r.actor_type,
    actorId: r.actor_id,
    action: r.action,
    subject: r.subject,
    clientId: r.client_id,
    ip: r.ip,
    userAgent: r.user_agent,
    outcome: r.outcome,
    reason: r.reason,
    details: r.details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** Filters for reading events. */
export interface EventFilter {
  afterSeq?: number;
  since?: Date;
  before?: Date;
  actorType?: string;
  subject?: string;
  action?: string;
}

/**
 * Reads events in chain order, in pages of `pageSize` by keyset on `seq` (constant memory for any table size). The
 * next page is fetched while the caller consumes this one, so the database and the caller work at once.
 */
export async function* readEvents(db: Kysely<DB>, f: EventFilter = {}, pageSize = 1000): AsyncGenerator<StoredEvent> {
  const page = (after: number) => {
    let q = db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', String(after) as never);
    if (f.since) q = q.where('at', '>=', f.since as never);
    if (f.before) q = q.where('at', '<', f.before as never);
    if (f.actorType) q = q.where('actor_type', '=', f.actorType);
    if (f.subject) q = q.where('subject', '=', f.subject);
    if (f.action) q = q.where('action', '=', f.action);
    const rows = q.orderBy('seq').limit(pageSize).execute();
    rows.catch(() => {}); // a caller that stops early never awaits the prefetched page
    return rows;
  };
  let next = page(f.afterSeq ?? 0);
  for (;;) {
    const rows = await next;
    if (rows.length === pageSize) next = page(Number(rows.at(-1)!.seq));
    for (const r of rows) yield toEvent(r);
    if (rows.length < pageSize) return;
  }
}

/** Newest events for one subject, newest first. */
export async function latestForSubject(db: Kysely<DB>, subject: string, limit: number): Promise<StoredEvent[]> {
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('subject', '=', subject)
    .orderBy('seq', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toEvent);
}

/** The newest checkpoint, if old rows were archived. */
export async function latestCheckpoint(db: Kysely<DB>): Promise<{ seq: number; hash: string } | undefined> {
  const cp = await db
    .selectFrom('audit_checkpoints')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return cp && { seq: Number(cp.seq), hash: cp.hash };
}

/**
 * Records a checkpoint and removes the archived rows up to it, atomically, under the append lock: month partitions
 * wholly archived are detached and dropped, other rows deleted (partitions.repository.ts).
 */
export async function archiveUpTo(
  db: Kysely<DB>,
  upTo: { seq: number; hash: string },
  archiveSha256: string,
  before: Date,
): Promise<{ deletedRows: number; droppedPartitions: string[] }> {
  return db.transaction().execute(async (trx) => {
    await LOCK.execute(trx);
    await trx
      .insertInto('audit_checkpoints')
      .values({ seq: upTo.seq, hash: upTo.hash, archive_sha256: archiveSha256 })
      .execute();
    await sql`set local dinhdanh.audit_archive = 'on'`.execute(trx);
    return removeArchived(trx, upTo.seq, before);
  });
}
