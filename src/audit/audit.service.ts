/**
 * The audit trail: who did what to whom, when, from where, with what outcome. Append-only and tamper-evident.
 *
 * Threat note: details never hold a password, code, token or secret: keys that look like one are dropped before
 * writing, whatever the caller passes. Subjects are pseudonymous (account ids, or a keyed hash of a personal ID).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Kysely } from 'kysely';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import {
  appendEvent,
  appendEvents,
  archiveUpTo,
  type EventFilter,
  latestCheckpoint,
  latestForSubject,
  readEvents,
  type StoredEvent,
} from './audit.repository.ts';
import { chainHash, GENESIS } from './chain.ts';
import { createMonthPartitions } from './partitions.repository.ts';

/** Who acted. */
export type ActorType = 'citizen' | 'officer' | 'staff' | 'operator' | 'client' | 'system';

/** An event to record. */
export interface AuditEvent {
  actor: { type: ActorType; id?: string | null };
  action: string;
  outcome: 'success' | 'failure';
  subject?: string | null;
  clientId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

const SECRETISH = /pass(word)?|secret|token|code|otp|cookie|authorization|key/i;

function scrub(value: unknown, depth = 0): unknown {
  if (depth > 5) return '[deep]';
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => scrub(v, depth + 1));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([k]) => !SECRETISH.test(k))
        .map(([k, v]) => [storable(k, 200), scrub(v, depth + 1)]),
    );
  }
  return typeof value === 'string' ? storable(value, 500) : value;
}

/**
 * `s` as PostgreSQL can store it exactly (so that the row matches its hash): at most `n` code units, never half a
 * surrogate pair (a cut one is dropped), lone surrogates and NUL (which text and jsonb cannot hold) as U+FFFD.
 */
function storable(s: string, n: number): string {
  let cut = s.length > n ? s.slice(0, n) : s;
  const last = cut.charCodeAt(cut.length - 1);
  if (s.length > n && last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut.toWellFormed().replaceAll('\u0000', '\ufffd');
}

/** Events per audit_append of the queue. */
const BATCH = 2000;

const clip = (s: string | null | undefined, n: number) => (s ? storable(s, n) : null);

/** Appends an event to the chain. */
export async function recordEvent(db: Kysely<DB>, e: AuditEvent): Promise<StoredEvent> {
  return appendEvent(db, content(e));
}

/** A batching writer for high-volume events (token issuance): `record` queues, and a flush appends every queued
 * event in one transaction at most `intervalMs` after the first of them was queued. The chain is the same as with
 * recordEvent; only the locking is shared. `close` flushes what is left.
 *
 * The flush timer is armed only while events wait (by the first event queued, or for a retry after a failed write):
 * an idle node does not wake up for an empty queue (it used to, 40 times a second). */
export function createAuditQueue(db: Kysely<DB>, onError: (err: unknown) => void, intervalMs = 25, limit = 200_000) {
  let queue: AuditEvent[] = [];
  /** When the oldest event not yet written was queued (epoch ms; 0 when none waits). */
  let oldestAt = 0;
  let flushing: Promise<void> = Promise.resolve();
  let failures = 0;
  let retryAt = 0;
  /** The one pending flush timer, if any; none after `close`. */
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  /** Flushes `ms` from now, unless a flush timer is already armed (it fires sooner or at the retry time). */
  const schedule = (ms: number) => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, ms);
    timer.unref();
  };
  const flush = (): Promise<void> => {
    if (!queue.length) return flushing;
    if (Date.now() < retryAt) {
      schedule(retryAt - Date.now()); // in backoff: the waiting events are written at the retry time
      return flushing;
    }
    // At most BATCH events per statement: a backlog left by an outage is written in rounds that each fit in the
    // statement timeout, instead of one statement that times out at every retry.
    const batch = queue.slice(0, BATCH);
    queue = queue.slice(BATCH);
    flushing = flushing.then(() =>
      appendEvents(db, batch.map(content)).then(
        () => {
          failures = 0;
          retryAt = 0;
          if (queue.length) schedule(0); // the rest of a backlog (while closing, `close` drives the rounds)
          // What arrived during the write waits since then at most (an upper bound, never an underestimate).
          oldestAt = queue.length ? oldestAt : 0;
        },
        (err) => {
          // The database is down or slow: keep the batch, in order, and try again with backoff (up to 5 s).
          // Bounded: past `limit` events the oldest are dropped, and that is reported.
          queue = batch.concat(queue);
          if (queue.length > limit) {
            const dropped = queue.length - limit;
            queue = queue.slice(dropped);
            onError(new Error(`audit queue full: ${dropped} events dropped`));
          }
          failures++;
          retryAt = Date.now() + Math.min(5000, 100 * 2 ** failures);
          schedule(retryAt - Date.now());
          onError(err);
        },
      ),
    );
    return flushing;
  };
  return {
    record(e: AuditEvent) {
      if (!oldestAt) oldestAt = Date.now();
      queue.push(e);
      if (queue.length >= 500) void flush();
      else schedule(intervalMs);
    },
    flush,
    /** Events waiting to be written. */
    get pending() {
      return queue.length;
    },
    /** Seconds the oldest event not yet written has waited (0 when none waits). */
    get lagSeconds() {
      return oldestAt ? (Date.now() - oldestAt) / 1000 : 0;
    },
    /** Stops the timer and writes what is queued, retrying until `deadline` (epoch ms); returns events left. */
    async close(deadline = Date.now() + 10_000): Promise<number> {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      for (;;) {
        retryAt = 0;
        await flush();
        if (!queue.length || Date.now() >= deadline) return queue.length;
        // A failed write waits before the next try; a written round of a backlog goes on at once.
        if (failures) await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
      }
    },
  };
}

/** The audit queue's interface. */
export type AuditQueue = ReturnType<typeof createAuditQueue>;

function content(e: AuditEvent) {
  return {
    actorType: e.actor.type,
    actorId: clip(e.actor.id, 200),
    action: e.action,
    subject: clip(e.subject, 200),
    clientId: clip(e.clientId, 200),
    ip: clip(e.ip, 100),
    userAgent: clip(e.userAgent, 500),
    outcome: e.outcome,
    reason: clip(e.reason, 200),
    details: scrub(e.details ?? {}) as Record<string, unknown>,
  };
}

/** Result of walking the chain. */
export type VerifyResult =
  | { ok: true; rows: number; lastSeq: number }
  | { ok: false; rows: number; seq: number; problem: 'altered' | 'missing_before' | 'reordered' };

/**
 * Walks the whole chain from genesis (or the newest archive checkpoint) and names the first broken row. Linear and
 * streaming: keyset pages of 5,000 rows by `seq`, the next fetched while this one is hashed (docs/scale.md).
 */
export async function verifyChain(db: Kysely<DB>): Promise<VerifyResult> {
  const cp = await latestCheckpoint(db);
  let prev = cp?.hash ?? GENESIS;
  let expectedSeq = (cp?.seq ?? 0) + 1;
  let rows = 0;
  for await (const e of readEvents(db, { afterSeq: cp?.seq ?? 0 }, 5000)) {
    rows++;
    if (e.seq !== expectedSeq) {
      return { ok: false, rows, seq: e.seq, problem: e.seq > expectedSeq ? 'missing_before' : 'reordered' };
    }
    const { prevHash, hash, ...content } = e;
    if (prevHash !== prev) return { ok: false, rows, seq: e.seq, problem: 'reordered' };
    if (chainHash(prev, content) !== hash) return { ok: false, rows, seq: e.seq, problem: 'altered' };
    prev = hash;
    expectedSeq++;
  }
  return { ok: true, rows, lastSeq: expectedSeq - 1 };
}

/** The subject of `audit.verified` events: the chain itself (indexed by subject, so the newest is found at once). */
export const CHAIN_SUBJECT = 'audit_chain';

/** Records what `audit verify` found, as an event on the chain it walked (the record of when it was last checked). */
export async function recordVerification(db: Kysely<DB>, r: VerifyResult, operator: string): Promise<void> {
  await recordEvent(db, {
    actor: { type: 'operator', id: operator },
    action: 'audit.verified',
    outcome: r.ok ? 'success' : 'failure',
    reason: r.ok ? null : r.problem,
    subject: CHAIN_SUBJECT,
    details: r.ok ? { rows: r.rows, lastSeq: r.lastSeq } : { rows: r.rows, seq: r.seq },
  });
}

/** When `audit verify` last found the chain intact (among its 20 newest runs), or null: one index lookup. */
export async function lastVerifiedAt(db: Kysely<DB>): Promise<Date | null> {
  const runs = await latestForSubject(db, CHAIN_SUBJECT, 20);
  return runs.find((e) => e.action === 'audit.verified' && e.outcome === 'success')?.at ?? null;
}

/** One NDJSON line for an event. */
export const eventLine = (e: StoredEvent) => `${JSON.stringify({ ...e, at: e.at.toISOString() })}\n`;

/** Streams events matching `filter` as NDJSON lines to `write`; returns how many. */
export async function exportEvents(
  db: Kysely<DB>,
  filter: EventFilter,
  write: (line: string) => Promise<void> | void,
): Promise<number> {
  let n = 0;
  for await (const e of readEvents(db, filter)) {
    await write(eventLine(e));
    n++;
  }
  return n;
}

/** What an archive run did. */
export interface ArchiveResult {
  /** Events written to the file and removed from the table. */
  archived: number;
  /** The checkpoint: the last archived event (0: nothing archived). */
  upToSeq: number;
  /** Month partitions detached and dropped whole (present only when some were). */
  droppedPartitions?: string[];
}

/**
 * Archives the events older than `before`: the chain's prefix up to the first event at or after `before` (so the
 * checkpoint is always a link of the chain, even if clocks of several nodes disagreed). Writes them to `file`
 * (NDJSON), records a checkpoint (last seq and hash, and the file's SHA-256) and only then removes them: month
 * partitions wholly archived are detached and dropped (a cut on a month boundary drops whole months, no row
 * deletes), other rows deleted. The chain keeps verifying from the checkpoint.
 */
export async function archiveEvents(db: Kysely<DB>, before: Date, file: string): Promise<ArchiveResult> {
  const verified = await verifyChain(db);
  if (!verified.ok) throw new AppError('conflict', `audit chain is broken at row ${verified.seq}; archive refused`);
  const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  try {
    await once(out, 'open');
  } catch (err) {
    out.destroy();
    const code = (err as { code?: string }).code;
    throw new AppError(
      'invalid_input',
      code === 'EEXIST'
        ? `${file} exists: an archive is never overwritten, choose a new file`
        : `cannot write ${file}: ${code ?? 'error'}`,
    );
  }
  const digest = createHash('sha256');
  let last: StoredEvent | undefined;
  let archived = 0;
  try {
    for await (const e of readEvents(db)) {
      if (e.at >= before) break;
      archived++;
      const line = eventLine(e);
      digest.update(line);
      if (!out.write(line)) await once(out, 'drain');
      last = e;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  if (!last) return { archived: 0, upToSeq: 0 };
  const removed = await archiveUpTo(db, { seq: last.seq, hash: last.hash }, digest.digest('hex'), before);
  return {
    archived,
    upToSeq: last.seq,
    ...(removed.droppedPartitions.length ? { droppedPartitions: removed.droppedPartitions } : {}),
  };
}

/**
 * Creates the audit table's partitions for this month and the `monthsAhead` coming ones where missing; returns the
 * names created (usually none: one catalog read). Idempotent, cheap, safe on every node: run by a periodic job.
 */
export async function maintainAuditPartitions(db: Kysely<DB>, now = new Date(), monthsAhead = 3): Promise<string[]> {
  return createMonthPartitions(db, now, monthsAhead);
}

/** The newest events about one subject (a citizen's own sign-in history). */
export async function subjectHistory(db: Kysely<DB>, subject: string, limit = 20): Promise<StoredEvent[]> {
  return latestForSubject(db, subject, limit);
}
