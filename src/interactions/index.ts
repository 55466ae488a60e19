/** Citizen-facing interaction pages (login, consent). */
export { type InteractionDeps, interactionRoutes } from './routes.ts';
