/** The tamper-evident audit trail. */
export {
  type ArchiveResult,
  type AuditEvent,
  type AuditQueue,
  archiveEvents,
  createAuditQueue,
  exportEvents,
  lastVerifiedAt,
  maintainAuditPartitions,
  recordEvent,
  recordVerification,
  subjectHistory,
  verifyChain,
} from './audit.service.ts';
export { type Act, type Actor, actorDetails, audited } from './audited.ts';
