export { MetricsRegistry, type LabelledValue } from './registry.js';
export { startMetricsServer, type MetricsServer } from './server.js';
export {
  registerMountMetrics,
  registerGcMetrics,
  emptyGcTotals,
  addGcPass,
  type MountStats,
  type GcTotals,
} from './mount-metrics.js';
export { ProcessMetrics } from './process.js';
