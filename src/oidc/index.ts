/** The OpenID Provider: configuration, storage adapter, accounts and claims. */
export {
  afterRequestCommit,
  commitRequest,
  discardRequest,
  inRequestScope,
  listAccountGrants,
  postgresAdapter,
  purgeExpired,
  revokeAccountGrant,
} from './adapter.ts';
export { clientMinLevel, requirementOf } from './assurance.ts';
export { backchannelBacklog, type DeliveryOutcome, deliverDue } from './backchannel.ts';
export { auditProviderEvents, countProviderEvents } from './events.ts';
export {
  type ProviderHost,
  type ProviderRef,
  publicDocument,
  startProviderHost,
} from './host.ts';
export { langOf } from './pages.ts';
export {
  ACCOUNT_CLIENT_ID,
  adminApiIndicator,
  CONSOLE_CLIENT_ID,
  createProvider,
  STAFF_CLIENTS,
  STAFF_TOOL_CLIENT_ID,
} from './provider.ts';
export {
  endExpiredSessions,
  endOtherSessions,
  endSession,
  listAccountSessions,
  processTerminations,
  requestSessionTermination,
} from './sessions.ts';
export { tokenVault } from './token-at-rest.ts';
