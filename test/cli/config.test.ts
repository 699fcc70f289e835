import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeConfig, resolveConfig, settingNames, settingSpecs } from '../../src/config/index.js';
import { DEFAULT_POLL_SPIN_US, MAX_POLL_SPIN_US } from '../../src/fuse/index.js';

test('defaults carry their units: 512 MiB memory, 1 s attr and entry timeouts, 4 MiB blocks', () => {
  const { config, sources } = resolveConfig();
  assert.equal(config.memoryBytes, 512 * 1024 ** 2);
  assert.equal(config.attrTimeoutMs, 1000);
  assert.equal(config.entryTimeoutMs, 1000);
  assert.equal(config.blockSizeBytes, 4 * 1024 ** 2);
  assert.equal(config.retentionMs, 7 * 86_400_000);
  assert.equal(config.cacheDir, '');
  assert.ok(settingNames.every((name) => sources[name] === 'default'));
});

test('flags beat the environment, which beats the config file, which beats defaults', () => {
  const dir = mkdtempSync('/tmp/strata-vfs-config-');
  try {
    const file = join(dir, 'strata.json');
    writeFileSync(file, JSON.stringify({ memory: '1G', 'attr-timeout': '5s', cacheSizeBytes: '2G' }));
    const { config, sources } = resolveConfig({
      filePath: file,
      env: { STRATA_MEMORY: '768M', STRATA_CACHE_SIZE: '' },
      flags: { attrTimeoutMs: '250ms' },
    });
    assert.equal(config.memoryBytes, 768 * 1024 ** 2);
    assert.equal(sources.memoryBytes, 'env');
    assert.equal(config.attrTimeoutMs, 250);
    assert.equal(sources.attrTimeoutMs, 'flag');
    assert.equal(config.cacheSizeBytes, 2 * 1024 ** 3, 'an empty env variable does not override');
    assert.equal(sources.cacheSizeBytes, 'file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad value names its source and says how to write it', () => {
  assert.throws(
    () => resolveConfig({ flags: { memoryBytes: 'lots' } }),
    /invalid --memory "lots".*e\.g\. 512M/,
  );
  assert.throws(
    () => resolveConfig({ env: { STRATA_ATTR_TIMEOUT: 'soon' } }),
    /invalid environment variable STRATA_ATTR_TIMEOUT "soon"/,
  );
  assert.throws(() => resolveConfig({ flags: { memoryBytes: '1M' } }), /must be between 32M and 1T/);
  assert.throws(() => resolveConfig({ flags: { uploadsInFlight: '2.5' } }), /whole number/);
});

test('a config file with an unknown key or bad JSON is rejected with the file name', () => {
  const dir = mkdtempSync('/tmp/strata-vfs-config-');
  try {
    const unknown = join(dir, 'a.json');
    writeFileSync(unknown, JSON.stringify({ memroy: '1G' }));
    assert.throws(() => resolveConfig({ filePath: unknown }), /a\.json: unknown setting "memroy"/);
    const broken = join(dir, 'b.json');
    writeFileSync(broken, '{ memory: ');
    assert.throws(() => resolveConfig({ filePath: broken }), /cannot read config file .*b\.json/);
    assert.throws(() => resolveConfig({ filePath: join(dir, 'missing.json') }), /cannot read config file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every setting has a distinct flag and environment variable and a valid default', () => {
  const flags = new Set(settingNames.map((n) => settingSpecs[n].flag));
  const envs = new Set(settingNames.map((n) => settingSpecs[n].env));
  assert.equal(flags.size, settingNames.length);
  assert.equal(envs.size, settingNames.length);
  const lines = describeConfig(resolveConfig());
  assert.equal(lines.length, settingNames.length);
  assert.match(
    lines.find((l) => l.startsWith('memory'))!,
    /536870912 .*\(default, bytes\)/,
  );
});

test('an on/off setting (io-uring) is off by default, on from a bare flag or env 1, and rejects other words', () => {
  assert.equal(resolveConfig().config.ioUring, false);
  assert.equal(resolveConfig({ flags: { ioUring: 'true' } }).config.ioUring, true);
  assert.equal(resolveConfig({ env: { STRATA_IO_URING: '1' } }).config.ioUring, true);
  assert.equal(resolveConfig({ env: { STRATA_IO_URING: 'no' } }).config.ioUring, false);
  assert.throws(
    () => resolveConfig({ env: { STRATA_IO_URING: 'maybe' } }),
    /invalid environment variable STRATA_IO_URING "maybe": use true or false/,
  );
});

test('--fuse-spin-us shows the FUSE layer default and takes its range', () => {
  const spec = settingSpecs.fuseSpinUs;
  assert.equal(spec.defaultText, String(DEFAULT_POLL_SPIN_US));
  assert.equal(spec.min, 0);
  assert.equal(spec.max, MAX_POLL_SPIN_US);
});
