export { startMetaServer, type MetaServer, type MetaServerOptions } from './server.js';
export { META_METHODS, type MetaMethod } from './methods.js';
export {
  runMetaServerProcess,
  startMetaServerProcess,
  parseMetaServerArgs,
  type MetaServerProcessOptions,
} from './main.js';
export {
  openThreadedMetaService,
  type ThreadedMetaService,
  type EngineWorkerOptions,
  type ThreadedServiceOptions,
} from './worker-service.js';
export { type EngineTask, type EngineTaskSpec, type StartEngineTask } from './engine-task.js';
