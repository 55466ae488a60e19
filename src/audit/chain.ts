/**
 * The hash chain: each event's hash is SHA-256 over the previous hash and the event's canonical JSON (keys sorted at
 * every depth), so altering, deleting or reordering any row breaks every hash after it.
 */
import { createHash } from 'node:crypto';

/** The hash before the first event. */
export const GENESIS = '0'.repeat(64);

/** An object's members as canonical JSON, `"key":value`, in key order (members whose value is undefined left out). */
function canonicalMembers(value: Record<string, unknown>): [string, string][] {
  return Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, `${JSON.stringify(k)}:${canonicalJson(v)}`]);
}

/** JSON with object keys sorted recursively; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object' && !(value instanceof Date))
    return `{${canonicalMembers(value as Record<string, unknown>)
      .map(([, m]) => m)
      .join(',')}}`;
  return JSON.stringify(value instanceof Date ? value.toISOString() : value);
}

/**
 * An event's canonical JSON in three parts around its `at` and `seq` values, which only the database knows when it
 * appends (migrations/20261201T130000_audit_append.ts):
 * `p0 + JSON.stringify(at.toISOString()) + p1 + String(seq) + p2 === canonicalJson({ ...content, at, seq })`.
 */
export function canonicalAroundAtAndSeq(
  content: Omit<ChainedContent, 'seq' | 'at'>,
): [p0: string, p1: string, p2: string] {
  const members = canonicalMembers({ ...content, at: 0, seq: 0 });
  const at = members.findIndex(([k]) => k === 'at');
  const seq = members.findIndex(([k]) => k === 'seq');
  const join = (ms: [string, string][]) => ms.map(([, m]) => m).join(',');
  const between = join(members.slice(at + 1, seq));
  const rest = join(members.slice(seq + 1));
  return [
    `{${join(members.slice(0, at))}${at > 0 ? ',' : ''}"at":`,
    `${between ? `,${between}` : ''},"seq":`,
    `${rest ? `,${rest}` : ''}}`,
  ];
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
