import { registerEngine, registerReader } from '../../engine-registry.js';
import { openSqliteEngine } from './engine.js';
import { openSqliteReader } from './reader.js';

registerEngine('sqlite', openSqliteEngine);
registerReader('sqlite', openSqliteReader);
