/**
 * Queries over `audit_events` (partitioned by month on `at`: see partitions.repository.ts) and `audit_checkpoints`.
 * Appends are serialized by an advisory lock.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { type DB, runPrepared } from '../db/index.ts';
import { type ChainedContent, chainHash, GENESIS } from './chain.ts';
import { removeArchived } from './partitions.repository.ts';

/** A stored event: its content and both hashes. */
export interface StoredEvent extends ChainedContent {
  prevHash: string;
  hash: string;
}

const LOCK = sql`select pg_advisory_xact_lock(hashtext('dinhdanh:audit'))`;

const APPEND = `insert into audit_events (seq, at, actor_type, actor_id, action, subject, client_id, ip, user_agent, outcome,
  reason, details, prev_hash, hash)
select * from unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
  $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::text[], $14::text[])`;

/**
 * The last link of the chain: the newest row, else the newest checkpoint, else genesis. On the partitioned table
 * this is a Merge Append of one backward index probe per partition (primary key (seq, at)) under a Limit 1.
 */
async function lastLink(trx: Kysely<DB>): Promise<{ seq: number; hash: string }> {
  const row = await trx
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (row) return { seq: Number(row.seq), hash: row.hash };
  const cp = await trx
    .selectFrom('audit_checkpoints')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return cp ? { seq: Number(cp.seq), hash: cp.hash } : { seq: 0, hash: GENESIS };
}

/** Appends one event at the end of the chain, in its own transaction (or the caller's). */
export async function appendEvent(db: Kysely<DB>, e: Omit<ChainedContent, 'seq' | 'at'>): Promise<StoredEvent> {
  return (await appendEvents(db, [e]))[0]!;
}

/**
 * Appends events in order, in one transaction under the lock (batched writers: one round of locking for many).
 * `clock` gives each event's time (tests place events in chosen months).
 */
export async function appendEvents(
  db: Kysely<DB>,
  events: Omit<ChainedContent, 'seq' | 'at'>[],
  clock: () => Date = () => new Date(),
): Promise<StoredEvent[]> {
  const run = async (trx: Transaction<DB> | Kysely<DB>) => {
    await LOCK.execute(trx);
    let last = await lastLink(trx);
    const stored: StoredEvent[] = [];
    for (const e of events) {
      const content: ChainedContent = { ...e, seq: last.seq + 1, at: clock() };
      const hash = chainHash(last.hash, content);
      stored.push({ ...content, prevHash: last.hash, hash });
      last = { seq: content.seq, hash };
    }
    // One statement for the whole batch whatever its size: column arrays unnested (no per-value query building).
    const column = <K extends keyof StoredEvent>(k: K) => stored.map((e) => e[k]);
    await runPrepared(trx, 'audit_append', APPEND, [
      column('seq'),
      column('at'),
      column('actorType'),
      column('actorId'),
      column('action'),
      column('subject'),
      column('clientId'),
      column('ip'),
      column('userAgent'),
      column('outcome'),
      column('reason'),
      stored.map((e) => JSON.stringify(e.details)),
      column('prevHash'),
      column('hash'),
    ]);
    return stored;
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
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
