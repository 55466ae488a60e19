/**
 * The hash chain: each event's hash is SHA-256 over the previous hash and the event's canonical JSON (keys sorted at
 * every depth), so altering, deleting or reordering any row breaks every hash after it.
 */
import { createHash } from 'node:crypto';

/** The hash before the first event. */
export const GENESIS = '0'.repeat(64);

/** JSON with object keys sorted recursively; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value instanceof Date ? value.toISOString() : value);
}

/** The content of an event that the hash covers. */
export interface ChainedContent {
  seq: number;
  at: Date;
  actorType: string;
  actorId: string | null;
  action: string;
  subject: string | null;
  clientId: string | null;
  ip: string | null;
  userAgent: string | null;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
}

/** Hash of an event given the previous event's hash. */
export function chainHash(prevHash: string, content: ChainedContent): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(content)).digest('hex');
}
