/** HTTP: the Koa app, errors, health. */
export { type AppDeps, createApp } from './app.ts';
export { errorRenderer } from './errors.ts';
export { POOL_FAILURE_WINDOW_MS, type Readiness, readinessCheck } from './readiness.ts';
