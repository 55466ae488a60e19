/** The OpenID Provider: configuration, storage adapter, accounts and claims. */
export {
  listAccountGrants,
  postgresAdapter,
  purgeExpired,
  revokeAccountGrant,
  revokeAccountSessions,
} from './adapter.ts';
export { clientMinLevel, levelOf, type Requirement, requirementOf } from './assurance.ts';
export { claimsOf, findAccount, SCOPE_CLAIMS } from './claims.ts';
export { auditProviderEvents } from './events.ts';
export { type JwksDocument, type ProviderHost, type ProviderRef, startProviderHost } from './host.ts';
export { langOf } from './pages.ts';
export { ACCOUNT_CLIENT_ID, createProvider, type ProviderDeps } from './provider.ts';
