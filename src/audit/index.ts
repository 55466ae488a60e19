/** The tamper-evident audit trail. */
export {
  type AuditEvent,
  type AuditQueue,
  archiveEvents,
  createAuditQueue,
  exportEvents,
  recordEvent,
  subjectHistory,
  verifyChain,
} from './audit.service.ts';
