/** Relying portals. */

export { CLIENT_CHANGES_CHANNEL } from './clients.repository.ts';
export {
  AUTH_METHODS,
  type AuthMethod,
  addClient,
  type ClientChanges,
  type ClientView,
  ensureFirstPartyClient,
  findClientMetadata,
  forgetCachedClients,
  getClient,
  listClients,
  MAX_GRACE_SECONDS,
  type NewClient,
  rotateClientSecret,
  setClientDisabled,
  setClientEnvironment,
  updateClient,
} from './clients.service.ts';
