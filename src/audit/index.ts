/** The tamper-evident audit trail. */
export type { EventFilter, StoredEvent } from './audit.repository.ts';
export {
  type ActorType,
  type AuditEvent,
  type AuditQueue,
  archiveEvents,
  createAuditQueue,
  eventLine,
  exportEvents,
  recordEvent,
  subjectHistory,
  type VerifyResult,
  verifyChain,
} from './audit.service.ts';
export { canonicalJson, chainHash, GENESIS } from './chain.ts';
