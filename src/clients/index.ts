/** Relying portals. */
export { addClient, type ClientView, findClientMetadata, listClients, type NewClient } from './clients.service.ts';
