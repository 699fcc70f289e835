// Shared by the S3 tests: where the real radosgw is, and URLs with a private prefix per test run.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo, LookupFunction, Server } from 'node:net';
import { once } from 'node:events';

/** The radosgw the tests use, from `eval "$(scripts/radosgw/start.sh)"`; undefined skips the tests. */
export const S3_TEST_URL = process.env.STRATA_S3_TEST_URL;

export const SKIP_REASON = S3_TEST_URL
  ? false
  : 'STRATA_S3_TEST_URL is unset: run eval "$(scripts/radosgw/start.sh)" to start a local radosgw first';

/** A fresh key prefix, so runs never see each other's objects. */
export function uniquePrefix(what: string): string {
  return `test-${what}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** `s3://bucket/PREFIX?...&extra`, built from STRATA_S3_TEST_URL. */
export function testUrl(prefix: string, extra: Record<string, string> = {}): string {
  const base = S3_TEST_URL ?? '';
  const q = base.indexOf('?');
  const head = (q < 0 ? base : base.slice(0, q)).replace(/\/+$/, '');
  const params = new URLSearchParams(q < 0 ? '' : base.slice(q + 1));
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const query = params.toString();
  return `${head}/${prefix}${query ? `?${query}` : ''}`;
}

/**
 * The repository root: the nearest directory above this file holding package.json (works from
 * dist/); from an out-of-tree build such as /tmp/dist-NAME, the working directory, which
 * scripts/run-tests.mjs sets to the repository.
 */
export function repoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = start;
    for (;;) {
      if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'radosgw'))) return dir;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error(
    `cannot find the StrataFS repository above ${fileURLToPath(import.meta.url)} or ${process.cwd()}`,
  );
}

/** Where scripts/radosgw keeps its state, and whether that cluster's radosgw is the one under test. */
export function localRadosgwPid(): number | undefined {
  const dir = process.env.STRATA_CEPH_DIR ?? '/var/tmp/strata-ceph';
  try {
    const pid = Number(readFileSync(join(dir, 'run', 'client.rgw.a.pid'), 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** A resolver that maps every name to 127.0.0.1 (BUCKET.localhost does not resolve on its own). */
export const resolveToLoopback = ((
  _host: string,
  options: unknown,
  callback: (...args: unknown[]) => void,
) => {
  const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
  if (all) callback(null, [{ address: '127.0.0.1', family: 4 }] satisfies LookupAddress[]);
  else callback(null, '127.0.0.1', 4);
}) as unknown as LookupFunction;

/** Starts `server` (net or http) on a free port of 127.0.0.1; resolves to the port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}
