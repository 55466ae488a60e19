/** Citizen-facing pages: login, second factor, consent (routes), /account, /enroll, /recover. */
export { accountRoutes } from './account.ts';
export { enrollRoutes } from './enroll.ts';
export { homeRoutes } from './home.ts';
export { recoverRoutes } from './recover.ts';
export { interactionRoutes } from './routes.ts';
