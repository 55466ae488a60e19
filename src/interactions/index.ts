/** Citizen-facing interaction pages (login, consent). */
export { type AccountDeps, accountRoutes } from './account.ts';
export { type EnrollDeps, enrollRoutes } from './enroll.ts';
export { type RecoverDeps, recoverRoutes } from './recover.ts';
export { type InteractionDeps, interactionRoutes } from './routes.ts';
