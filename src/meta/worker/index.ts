export { MetaWorkerProxy, openMetaServiceInWorker } from './proxy.js';
export type { WorkerRemote } from './protocol.js';
