/** HTTP: the Koa app, errors, health. */
export { createApp } from './app.ts';
export { readinessCheck } from './readiness.ts';
