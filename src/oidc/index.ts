/** The OpenID Provider: configuration, storage adapter, accounts and claims. */
export {
  listAccountGrants,
  postgresAdapter,
  purgeExpired,
  revokeAccountGrant,
} from './adapter.ts';
export { clientMinLevel, levelOf, type Requirement, requirementOf } from './assurance.ts';
export { deliverDue, queueingFetch } from './backchannel.ts';
export { claimsOf, findAccount, SCOPE_CLAIMS } from './claims.ts';
export { auditProviderEvents } from './events.ts';
export {
  type JwksDocument,
  type ProviderHost,
  type ProviderRef,
  publicDocument,
  startProviderHost,
} from './host.ts';
export { langOf } from './pages.ts';
export { ACCOUNT_CLIENT_ID, createProvider, type ProviderDeps } from './provider.ts';
export {
  endExpiredSessions,
  endOtherSessions,
  endSession,
  listAccountSessions,
  processTerminations,
  requestSessionTermination,
  type SessionRow,
  upsertSessionDevice,
} from './sessions.ts';
export { BEARER_MODELS, type TokenVault, tokenVault } from './token-at-rest.ts';
