/** Relying portals. */
export {
  addClient,
  ensureFirstPartyClient,
  findClientMetadata,
  listClients,
} from './clients.service.ts';
