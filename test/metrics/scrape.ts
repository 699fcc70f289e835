// Scraping a /metrics endpoint over 127.0.0.1 and reading samples out of the text format.
import assert from 'node:assert/strict';

/** Samples by `name{labels}` exactly as written in the exposition. */
export type Samples = Map<string, number>;

/** Parses the text format: `name{labels} value` per sample line, comments skipped. */
export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(match, `not a sample line of the text format: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

export async function scrape(address: string): Promise<Samples> {
  const response = await fetch(`http://${address}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

/** A sample's value, 0 when absent (labelled series appear with their first count). */
export function valueOf(samples: Samples, key: string): number {
  return samples.get(key) ?? 0;
}

/** Asserts a histogram series is well formed: cumulative buckets, +Inf equal to _count. */
export function assertHistogram(samples: Samples, name: string, labels: string): void {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, value] of samples) {
    if (!key.startsWith(`${name}_bucket{`) || !key.includes(labels)) continue;
    const le = /le="([^"]+)"/.exec(key)?.[1];
    assert.ok(le, key);
    buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: value });
  }
  assert.ok(buckets.length > 1, `no buckets of ${name}{${labels}}`);
  buckets.sort((a, b) => a.le - b.le);
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i]!.count >= buckets[i - 1]!.count, `${name}{${labels}} buckets are cumulative`);
  }
  assert.equal(buckets.at(-1)!.le, Infinity);
  const countKey = labels === '' ? `${name}_count` : `${name}_count{${labels}}`;
  assert.equal(buckets.at(-1)!.count, valueOf(samples, countKey));
  assert.equal(buckets[0]!.le, 0.00005, 'the first bucket is 50 µs');
  assert.equal(buckets.at(-2)!.le, 5, 'the last finite bucket is 5 s');
}
