/**
 * The monthly partitions of `audit_events` (range on `at`, UTC months, plus a DEFAULT partition so that an insert
 * never fails): creating the coming months ahead of time, and detaching and dropping months wholly archived.
 *
 * Locks: a partition is created standalone and then ATTACHed (SHARE UPDATE EXCLUSIVE on the parent: reads and
 * appends go on); detaching takes ACCESS EXCLUSIVE on the parent for a moment. Both run with a lock_timeout, so a
 * long reader makes them fail and retry later instead of queueing every append behind them.
 */
import { type Kysely, sql } from 'kysely';
import type { DB } from '../db/index.ts';

/** One partition; `from` and `to` are null for the DEFAULT partition. */
export interface Partition {
  name: string;
  from: Date | null;
  to: Date | null;
}

/** First instant (UTC) of the month of `d`, shifted by `months`. */
export const monthStart = (d: Date, months = 0) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));

/** The name of the partition holding the month starting at `from`: audit_events_pYYYYMM. */
export const partitionName = (from: Date) =>
  `audit_events_p${from.getUTCFullYear()}${String(from.getUTCMonth() + 1).padStart(2, '0')}`;

/** The partitions of audit_events, oldest first, the DEFAULT partition last. */
export async function listPartitions(db: Kysely<DB>): Promise<Partition[]> {
  const { rows } = await sql<Partition>`
    select c.relname as name,
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz as "from",
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz as "to"
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'audit_events'::regclass
    order by 2 nulls last`.execute(db);
  return rows;
}

const LOCK_TIMEOUT = sql`set local lock_timeout = '3s'`;

/**
 * Creates the partitions of the month of `now` and the `ahead` months after it that do not exist yet; returns the
 * names created. Idempotent and safe on every node at once (one node works, the others skip the round). Rows that
 * fell into the DEFAULT partition for such a month (maintenance did not run for months) are moved into it.
 */
export async function createMonthPartitions(db: Kysely<DB>, now: Date, ahead: number): Promise<string[]> {
  const wanted = (parts: Partition[]) => {
    const have = new Set(parts.map((p) => p.from?.getTime()));
    const months: Date[] = [];
    for (let m = 0; m <= ahead; m++) if (!have.has(monthStart(now, m).getTime())) months.push(monthStart(now, m));
    return months;
  };
  // The common case, every round: one catalog read, no transaction, no lock.
  if (!wanted(await listPartitions(db)).length) return [];
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ got: boolean }>`
      select pg_try_advisory_xact_lock(hashtext('dinhdanh:audit-partitions')) as got`.execute(trx);
    if (!rows[0]?.got) return [];
    await LOCK_TIMEOUT.execute(trx);
    const parts = await listPartitions(trx);
    const fallback = parts.find((p) => p.from === null)?.name;
    const created: string[] = [];
    for (const from of wanted(parts)) {
      const to = monthStart(from, 1);
      const name = partitionName(from);
      await sql`create table ${sql.id(name)} (like audit_events including defaults including constraints)`.execute(trx);
      if (fallback) {
        const strays = await sql<{ n: number }>`select count(*)::int as n from ${sql.id(fallback)}
          where at >= ${from} and at < ${to}`.execute(trx);
        if (strays.rows[0]!.n) {
          // Appends wait while the strays move, or the attach below would find new ones in the DEFAULT partition.
          await sql`select pg_advisory_xact_lock(hashtext('dinhdanh:audit'))`.execute(trx);
          await sql`insert into ${sql.id(name)} select * from ${sql.id(fallback)}
            where at >= ${from} and at < ${to} order by seq`.execute(trx);
          await sql`set local dinhdanh.audit_archive = 'on'`.execute(trx);
          await sql`delete from ${sql.id(fallback)} where at >= ${from} and at < ${to}`.execute(trx);
        }
      }
      // Indexes and the append-only trigger are cloned from the parent as the partition is attached.
      await sql`alter table audit_events attach partition ${sql.id(name)}
        for values from (${sql.lit(from.toISOString())}) to (${sql.lit(to.toISOString())})`.execute(trx);
      created.push(name);
    }
    return created;
  });
}

/**
 * In an archiving transaction (the chain lock held, the checkpoint at `upToSeq` written): removes every row up to
 * `upToSeq`. A month partition that ends at or before `before` and holds no row after `upToSeq` is detached and
 * dropped whole; rows of the others are deleted. The row deletes run first, so the ACCESS EXCLUSIVE lock a detach
 * takes on the parent is held only until the commit.
 */
export async function removeArchived(
  trx: Kysely<DB>,
  upToSeq: number,
  before: Date,
): Promise<{ deletedRows: number; droppedPartitions: string[] }> {
  await LOCK_TIMEOUT.execute(trx);
  const whole: string[] = [];
  const partly: string[] = [];
  for (const p of await listPartitions(trx)) {
    const newest =
      p.to && p.to <= before
        ? await sql<{ seq: string }>`select seq from ${sql.id(p.name)} order by seq desc limit 1`.execute(trx)
        : undefined;
    if (newest && !(newest.rows[0] && Number(newest.rows[0].seq) > upToSeq)) whole.push(p.name);
    else partly.push(p.name);
  }
  let deletedRows = 0;
  for (const name of partly) {
    const r = await sql`delete from ${sql.id(name)} where seq <= ${String(upToSeq)}`.execute(trx);
    deletedRows += Number(r.numAffectedRows ?? 0);
  }
  for (const name of whole) {
    await sql`alter table audit_events detach partition ${sql.id(name)}`.execute(trx);
    await sql`drop table ${sql.id(name)}`.execute(trx);
  }
  return { deletedRows, droppedPartitions: whole };
}
