import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { runMetaConformance } from './conformance/index.js';

const base = mkdtempSync(join(tmpdir(), 'strata-meta-conf-'));
let n = 0;

after(() => rmSync(base, { recursive: true, force: true }));

runMetaConformance({
  name: 'sqlite',
  newUrl: async () => {
    const dir = join(base, `v${++n}`);
    mkdirSync(dir);
    return `sqlite:${join(dir, 'meta.db')}`;
  },
  dropUrl: async (url) => rmSync(dirname(url.slice('sqlite:'.length)), { recursive: true, force: true }),
});
