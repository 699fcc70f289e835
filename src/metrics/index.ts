export { MetricsRegistry, type LabelledValue, type LabelledHistogram } from './registry.js';
export {
  registerCallMetrics,
  registerMetaServerMetrics,
  type CallCounts,
  type RpcServerCounts,
} from './rpc-metrics.js';
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
export { registerEngineMetrics, type EngineCounts } from './engine-metrics.js';
