/** Metrics: the Prometheus registry of a node, its recording functions and its own listener. */
export { createMetrics, type LoginOutcome, type MetricSources, type Metrics } from './registry.ts';
export { type MetricsServer, startMetricsServer } from './server.ts';
