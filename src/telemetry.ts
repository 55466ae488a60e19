/**
 * OpenTelemetry tracing, off by default. Loaded with `node --import ./src/telemetry.ts` (bin/dinhdanh and
 * `npm start` add it when OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT is set) so that the SDK and its
 * module hooks are in place before the instrumented modules (http, koa, pg) load: a static import from the CLI would
 * come too late, since ESM imports are all evaluated before the first line of the importing module runs.
 *
 * Configured only by the standard `OTEL_*` variables, read by the SDK itself (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_BSP_SCHEDULE_DELAY, ...); this file reads
 * process.env only to decide whether to start (it runs before src/config/, which cannot describe the SDK's variables).
 *
 * Database spans carry the statement text with its placeholders, never its parameters (enhancedDatabaseReporting
 * off), and only inside a request's trace (background timers would otherwise start a trace every second).
 */
import { register } from 'node:module';

const env = process.env;
const enabled =
  (env.OTEL_TRACES_EXPORTER !== undefined && env.OTEL_TRACES_EXPORTER !== 'none') ||
  env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined ||
  env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined;

if (enabled && env.OTEL_SDK_DISABLED !== 'true') {
  // ESM modules (and the CommonJS ones they import) are patched through import-in-the-middle's loader hook.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = await import('@opentelemetry/instrumentation-http');
  const { KoaInstrumentation } = await import('@opentelemetry/instrumentation-koa');
  const { PgInstrumentation } = await import('@opentelemetry/instrumentation-pg');
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'dinhdanh',
    instrumentations: [
      new HttpInstrumentation(),
      new KoaInstrumentation(),
      new PgInstrumentation({ enhancedDatabaseReporting: false, requireParentSpan: true }),
    ],
  });
  sdk.start();
}
