/** Citizen-facing interaction pages (login, consent). */
export { type AccountDeps, accountRoutes } from './account.ts';
export { type InteractionDeps, interactionRoutes } from './routes.ts';
