export { parseRpcAddress, formatRpcAddress, type RpcAddress } from './address.js';
export type { RpcSecret } from './auth.js';
export {
  PROTOCOL_VERSION,
  DEFAULT_MAX_FRAME_BYTES,
  EncodedValue,
  adoptEncodedValue,
  encodeValue,
} from './codec.js';
export {
  startRpcServer,
  type RpcServer,
  type RpcServerOptions,
  type RpcHandler,
  type CallInfo,
  type RpcServerEvent,
} from './server.js';
export { RpcClient, DEFAULT_CALL_TIMEOUT_MS, type RpcClientOptions, type CallOptions } from './client.js';
export { ReplayCache, type ReplayOptions } from './replay.js';
export { RpcCallStats, RpcServerStats, OTHER_METHOD } from './stats.js';
