/**
 * How often a refusal is written to the audit trail. Every refusal answers 403, but a caller repeating the same
 * refused request cannot turn each one into a serialized audit append (the chain's lock is shared with every
 * sign-in): the first refusal of a caller for a capability is audited, then at most one per window, carrying how many
 * were answered without an event in between. Per node, bounded in memory.
 */
const WINDOW_MS = 60_000;
const MAX_KEYS = 10_000;
const seen = new Map<string, { at: number; suppressed: number }>();

/** Whether to audit this refusal now; if so, how many of the same were not audited since the last event. */
export function denialToAudit(key: string, now = Date.now()): { audit: false } | { audit: true; suppressed: number } {
  const last = seen.get(key);
  if (last && now - last.at < WINDOW_MS) {
    last.suppressed++;
    return { audit: false };
  }
  if (seen.size >= MAX_KEYS) seen.clear();
  seen.set(key, { at: now, suppressed: 0 });
  return { audit: true, suppressed: last?.suppressed ?? 0 };
}
