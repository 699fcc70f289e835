import { registerEngine } from '../../engine-registry.js';
import { openSqliteEngine } from './engine.js';

registerEngine('sqlite', openSqliteEngine);
