import { registerEngine } from '../../engine-registry.js';
import { openPostgresEngine } from './engine.js';

// postgresql:// falls back to this opener in the registry.
registerEngine('postgres', openPostgresEngine);
