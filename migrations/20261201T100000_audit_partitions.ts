/**
 * The audit trail partitioned by month (range on `at`, UTC months), so that archiving drops whole partitions instead
 * of deleting rows, and indexes stay per month. The rows of an existing deployment are moved in this migration's
 * transaction: a new partitioned table is created, the rows copied in chain order, the old table dropped.
 *
 * - The primary key of a partitioned table must hold the partition key: (seq, at). `seq` stays unique in practice,
 *   since appends are serialized by the chain lock; the key's leading `seq` serves `order by seq` (keyset pages,
 *   the newest row) in every partition.
 * - Partitions exist from the oldest row's month to three months ahead, and a DEFAULT partition takes any row whose
 *   month has none, so an insert never fails; the service creates the coming months as time passes.
 * - The append-only trigger is created on the parent: PostgreSQL clones it onto every partition, present and future.
 * - Indexes for staff search: (subject, seq), (actor_id, seq), (action, seq), and (at).
 * Frozen once landed.
 */
import { type Kysely, sql } from 'kysely';

const AHEAD = 3;

/** First instant (UTC) of the month of `d`, shifted by `months`. */
const monthStart = (d: Date, months = 0) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));
const partitionName = (from: Date) =>
  `audit_events_p${from.getUTCFullYear()}${String(from.getUTCMonth() + 1).padStart(2, '0')}`;

const COLUMNS = sql`
  seq bigint not null,
  at timestamptz not null,
  actor_type text not null,
  actor_id text,
  action text not null,
  subject text,
  client_id text,
  ip text,
  user_agent text,
  outcome text not null,
  reason text,
  details jsonb not null,
  prev_hash text not null,
  hash text not null`;

export async function up(db: Kysely<any>): Promise<void> {
  // Nothing may append while the rows move (the service's writers take this lock too).
  await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:audit'))`.execute(db);
  await sql`alter table audit_events rename to audit_events_unpartitioned`.execute(db);
  await sql`alter table audit_events_unpartitioned rename constraint audit_events_pkey to audit_events_unpartitioned_pkey`.execute(
    db,
  );
  await sql`alter index audit_events_subject rename to audit_events_unpartitioned_subject`.execute(db);
  await sql`alter index audit_events_at rename to audit_events_unpartitioned_at`.execute(db);

  await sql`create table audit_events (${COLUMNS}, primary key (seq, at)) partition by range (at)`.execute(db);
  await sql`create index audit_events_subject on audit_events (subject, seq)`.execute(db);
  await sql`create index audit_events_actor on audit_events (actor_id, seq)`.execute(db);
  await sql`create index audit_events_action on audit_events (action, seq)`.execute(db);
  await sql`create index audit_events_at on audit_events (at)`.execute(db);

  const { rows } = await sql<{ oldest: Date | null }>`
    select min(at) as oldest from audit_events_unpartitioned`.execute(db);
  const now = new Date();
  // Rows older than ten years (none expected) would go to the DEFAULT partition rather than make 120+ tables.
  const floor = monthStart(now, -120);
  const found = rows[0]?.oldest ?? now;
  const oldest = new Date(Math.min(now.getTime(), Math.max(found.getTime(), floor.getTime())));
  for (let from = monthStart(oldest); from < monthStart(now, AHEAD + 1); from = monthStart(from, 1)) {
    const to = monthStart(from, 1);
    await sql`create table ${sql.id(partitionName(from))} partition of audit_events
      for values from (${sql.lit(from.toISOString())}) to (${sql.lit(to.toISOString())})`.execute(db);
  }
  await sql`create table audit_events_default partition of audit_events default`.execute(db);

  await sql`insert into audit_events select * from audit_events_unpartitioned order by seq`.execute(db);
  await sql`drop table audit_events_unpartitioned`.execute(db);
  // The same function as before (updates never; deletes only with dinhdanh.audit_archive set), on every partition.
  await sql`
    create trigger audit_events_append_only before update or delete on audit_events
    for each row execute function audit_events_append_only()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:audit'))`.execute(db);
  await sql`alter table audit_events rename to audit_events_partitioned`.execute(db);
  for (const index of ['subject', 'actor', 'action', 'at'])
    await sql`alter index ${sql.id(`audit_events_${index}`)} rename to ${sql.id(`audit_events_partitioned_${index}`)}`.execute(
      db,
    );
  await sql`alter table audit_events_partitioned rename constraint audit_events_pkey to audit_events_partitioned_pkey`.execute(
    db,
  );
  await sql`create table audit_events (${COLUMNS}, primary key (seq))`.execute(db);
  await sql`create index audit_events_subject on audit_events (subject, seq)`.execute(db);
  await sql`create index audit_events_at on audit_events (at)`.execute(db);
  await sql`insert into audit_events select * from audit_events_partitioned order by seq`.execute(db);
  await sql`drop table audit_events_partitioned`.execute(db);
  await sql`
    create trigger audit_events_append_only before update or delete on audit_events
    for each row execute function audit_events_append_only()`.execute(db);
}
