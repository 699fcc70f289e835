export { connectMeta, type MetaClient, type MetaClientOptions } from './client.js';
