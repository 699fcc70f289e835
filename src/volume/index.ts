export { type MountedVolume } from './client.js';
export { startEmbedded, type EmbeddedOptions } from './embedded.js';
export { mountRemote, type RemoteOptions } from './remote.js';
export { connectRemoteMeta } from './rpc-access.js';
export { resolveClientSecret } from './secret.js';
export { formatNewVolume, redactUrl, type FormatOptions } from './serve.js';
export { volumeStatus, type VolumeStatus } from './meta-access.js';
export { VERSION } from './version.js';
export { claimEngine, type EngineClaim } from './engine-lock.js';
