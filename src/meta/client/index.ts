export { connectMeta, type MetaClient, type MetaClientOptions, type MetaInvalidation } from './client.js';
