/**
 * The two database steps of one import batch: claiming its numbers (file-wide duplicate detection) and applying it
 * to `residents` in one transaction, all of it or none of it.
 */
import type pg from 'pg';
import { claimPins, leavingActive, reissueStaged, stage, unstage, upsertStaged } from './import.repository.ts';
/** What the database steps need to know of a line (its values travel as COPY text). */
export interface BatchLine {
  line: number;
  pin: string;
  previousPin: string | null;
  status: string;
}

/** Rejected line numbers and why. */
export type Duplicates = Map<number, string>;

/**
 * Claims the batch's numbers, then the previous numbers of the lines left, for this run; returns the lines whose
 * number (or previous number) an earlier line of the file already had. The first line wins.
 */
export async function claimBatch(
  client: pg.ClientBase,
  residents: BatchLine[],
  runId: string,
  previousRunId: string,
): Promise<Duplicates> {
  const duplicates: Duplicates = new Map();
  const seen = await claimPins(
    client,
    runId,
    residents.map((r) => r.pin),
  );
  for (const r of residents) if (seen.has(r.pin)) duplicates.set(r.line, 'duplicate_in_file');
  const moving = residents.filter((r) => r.previousPin && !duplicates.has(r.line));
  if (moving.length) {
    const seenPrevious = await claimPins(
      client,
      previousRunId,
      moving.map((r) => r.previousPin!),
    );
    for (const r of moving)
      if (seenPrevious.has(r.previousPin!)) duplicates.set(r.line, 'duplicate_previous_pin_in_file');
  }
  return duplicates;
}

/** What one committed batch did. */
export interface BatchResult {
  inserted: number;
  /** Numbers whose row changed (an update, or a reissue from a previous number). */
  updated: Set<string>;
  /** Internal ids of residents whose status left `active`. */
  leaving: string[];
}

/** Applies the batch minus its duplicates in one transaction. `copyChunks` hold every line of the batch. */
export async function applyBatch(
  client: pg.ClientBase,
  residents: BatchLine[],
  copyChunks: Buffer[],
  duplicates: Duplicates,
): Promise<BatchResult> {
  const kept = duplicates.size ? residents.filter((r) => !duplicates.has(r.line)) : residents;
  await client.query('begin');
  try {
    await stage(client, copyChunks);
    await unstage(client, [...duplicates.keys()]);
    const reissued = kept.some((r) => r.previousPin) ? await reissueStaged(client) : [];
    const leaving = kept.some((r) => r.status !== 'active') ? await leavingActive(client) : [];
    const { inserted, updated } = await upsertStaged(client);
    await client.query('commit');
    // A reissue alone (same data, new number) counts as an update.
    return { inserted, updated: new Set([...updated, ...reissued]), leaving };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}
