/** HTTP: the Koa app, errors, health. */
export { type AppDeps, createApp } from './app.ts';
export { errorRenderer } from './errors.ts';
export { type Readiness, readinessCheck } from './readiness.ts';
