/** Relying portals. */

export { CLIENT_CHANGES_CHANNEL } from './clients.repository.ts';
export {
  AUTH_METHODS,
  type AuthMethod,
  addClient,
  type ClientChanges,
  ensureFirstPartyClient,
  findClientMetadata,
  forgetCachedClients,
  listClients,
  MAX_GRACE_SECONDS,
  rotateClientSecret,
  updateClient,
} from './clients.service.ts';
