// The registry reads its strata_* values at scrape time from the callbacks it was given, keeps
// the naming rule, and the server answers only GET /metrics and releases its port on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MetricsRegistry,
  addGcPass,
  emptyGcTotals,
  registerGcMetrics,
  registerMountMetrics,
  startMetricsServer,
  type MountStats,
} from '../../src/metrics/index.js';
import { LatencyHistograms } from '../../src/common/index.js';

test('values come from the callbacks at each scrape, labelled families included', async () => {
  const metrics = new MetricsRegistry();
  const state = { bytes: 5, level: 2, byOpcode: new Map([['LOOKUP', 3]]) };
  metrics.counter('strata_test_bytes_total', 'bytes', () => state.bytes);
  metrics.gauge('strata_test_level', 'level', () => state.level);
  metrics.labelledCounter('strata_test_requests_total', 'requests', ['opcode'], () =>
    [...state.byOpcode].map(([opcode, value]) => ({ labels: { opcode }, value })),
  );
  let { body } = await metrics.text();
  assert.match(body, /^strata_test_bytes_total 5$/m);
  assert.match(body, /^strata_test_level 2$/m);
  assert.match(body, /^strata_test_requests_total\{opcode="LOOKUP"\} 3$/m);
  assert.match(body, /^# TYPE strata_test_bytes_total counter$/m);
  assert.match(body, /^# TYPE strata_test_level gauge$/m);
  assert.match(body, /^process_cpu_seconds_total /m);

  state.bytes = 9;
  state.level = 0;
  state.byOpcode.set('GETATTR', 1);
  ({ body } = await metrics.text());
  assert.match(body, /^strata_test_bytes_total 9$/m);
  assert.match(body, /^strata_test_level 0$/m);
  assert.match(body, /^strata_test_requests_total\{opcode="LOOKUP"\} 3$/m);
  assert.match(body, /^strata_test_requests_total\{opcode="GETATTR"\} 1$/m);
});

test('names keep the rule: strata_ prefix, _total on counters and only there', () => {
  const metrics = new MetricsRegistry();
  assert.throws(() => metrics.counter('fuse_requests_total', 'x', () => 0), /strata_/);
  assert.throws(() => metrics.counter('strata_requests', 'x', () => 0), /counters end in _total/);
  assert.throws(() => metrics.gauge('strata_level_total', 'x', () => 0), /gauges do not/);
});

test('GC totals add pass reports, and failed passes apart', async () => {
  const metrics = new MetricsRegistry();
  const totals = emptyGcTotals();
  registerGcMetrics(metrics, totals);
  addGcPass(totals, { slices: 2, objects: 5, bytes: 4096 });
  addGcPass(totals, undefined);
  addGcPass(totals, { slices: 1, objects: 1, bytes: 10 });
  const { body } = await metrics.text();
  assert.match(body, /^strata_gc_passes_total 2$/m);
  assert.match(body, /^strata_gc_failed_passes_total 1$/m);
  assert.match(body, /^strata_gc_deleted_objects_total 6$/m);
  assert.match(body, /^strata_gc_deleted_bytes_total 4106$/m);
});

test('the server answers GET /metrics only, refuses a busy port in one line, and closes', async () => {
  const metrics = new MetricsRegistry();
  metrics.counter('strata_test_total', 'x', () => 1);
  const server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
  try {
    const ok = await fetch(`http://${server.address}/metrics`);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^strata_test_total 1$/m);
    assert.equal((await fetch(`http://${server.address}/other`)).status, 404);
    assert.equal((await fetch(`http://${server.address}/metrics`, { method: 'POST' })).status, 405);
    const port = Number(server.address.split(':').pop());
    await assert.rejects(
      startMetricsServer(metrics, { host: '127.0.0.1', port }),
      new RegExp(`^Error: cannot serve metrics on 127\\.0\\.0\\.1:${port}: the port is in use`),
    );
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`http://${server.address}/metrics`), /fetch failed/);
});

test('latency histograms are read from LatencyHistograms at each scrape, cumulative, 50 µs to 5 s', async () => {
  const metrics = new MetricsRegistry();
  const histograms = new LatencyHistograms(2);
  metrics.latencyHistogram('strata_test_call_duration_seconds', 'latency', ['method'], () => [
    { labels: { method: 'a' }, histograms, series: 0 },
  ]);
  histograms.observe(0, 0.03); // 30 µs
  histograms.observe(0, 0.2); // 200 µs
  histograms.observe(0, 7_000); // 7 s, past the last bound
  histograms.observe(1, 1); // another series, not exported
  const { body } = await metrics.text();
  assert.match(body, /^# TYPE strata_test_call_duration_seconds histogram$/m);
  assert.match(body, /^strata_test_call_duration_seconds_bucket\{method="a",le="0.00005"\} 1$/m);
  assert.match(body, /^strata_test_call_duration_seconds_bucket\{method="a",le="0.0001"\} 1$/m);
  assert.match(body, /^strata_test_call_duration_seconds_bucket\{method="a",le="0.00025"\} 2$/m);
  assert.match(body, /^strata_test_call_duration_seconds_bucket\{method="a",le="5"\} 2$/m);
  assert.match(body, /^strata_test_call_duration_seconds_bucket\{method="a",le="\+Inf"\} 3$/m);
  assert.match(body, /^strata_test_call_duration_seconds_count\{method="a"\} 3$/m);
  assert.match(body, /^strata_test_call_duration_seconds_sum\{method="a"\} 7.00023$/m);
  assert.equal(body.match(/^strata_test_call_duration_seconds_bucket/gm)?.length, 17, '16 bounds and +Inf');

  // Snapshots from another thread add up.
  const other = new LatencyHistograms(2);
  other.observe(0, 0.03);
  histograms.add(other.bucketCounts, other.sumsSeconds);
  assert.match((await metrics.text()).body, /^strata_test_call_duration_seconds_count\{method="a"\} 4$/m);
  assert.throws(() => histograms.add(new Float64Array(3), new Float64Array(1)), /cannot be added/);
  assert.throws(
    () => metrics.latencyHistogram('strata_test_latency', 'x', [], () => []),
    /latency histograms end in _seconds/,
  );
});

test('a mount is read once per scrape, and a scrape right after another reads it again', async () => {
  const metrics = new MetricsRegistry();
  let reads = 0;
  const stats: MountStats = {
    fuse: {
      opcodes: [{ opcode: 'INIT', requests: 1, errors: 0 }],
      readBytes: 0,
      writtenBytes: 0,
      pollSpins: { found: 5, missed: 2, contended: 1 },
    },
    data: {
      memory: { limitBytes: 1, usedBytes: 0, peakBytes: 0, waitingAcquires: 0 },
      memoryCache: { bytes: 0, hits: 0, misses: 0 },
      diskCache: { enabled: false, bytes: 0, capacityBytes: 0, hits: 0, corrupt: 0 },
      uploads: { inFlight: 0, queued: 0, blocks: 0, bytes: 0, errors: 0 },
      fetches: { inFlight: 0, blocks: 0, bytes: 0, readaheadBlocks: 0, corrupt: 0 },
    },
    pageCache: { pushes: 0, pushedBytes: 0, dropped: 0, failed: 0 },
  };
  registerMountMetrics(metrics, () => {
    reads++;
    return structuredClone(stats);
  });
  const first = (await metrics.text()).body;
  assert.match(first, /^strata_fuse_written_bytes_total 0$/m);
  assert.match(first, /^strata_fuse_poll_spins_total\{outcome="found"\} 5$/m);
  assert.match(first, /^strata_fuse_poll_spins_total\{outcome="contended"\} 1$/m);
  assert.equal(reads, 1, 'every metric of one scrape reads the same snapshot');
  // A write between two scrapes a few microseconds apart (a snapshot kept 100 ms hid it).
  stats.fuse.writtenBytes = 4096;
  stats.fuse.opcodes = [...stats.fuse.opcodes, { opcode: 'WRITE', requests: 1, errors: 0 }];
  const { body } = await metrics.text();
  assert.match(body, /^strata_fuse_written_bytes_total 4096$/m);
  assert.match(body, /^strata_fuse_requests_total\{opcode="WRITE"\} 1$/m);
  assert.equal(reads, 2);
});
