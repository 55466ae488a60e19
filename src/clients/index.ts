/** Relying portals. */
export {
  addClient,
  type ClientView,
  ensureFirstPartyClient,
  findClientMetadata,
  listClients,
  type NewClient,
} from './clients.service.ts';
