// Lean SigV4 client (src/object/backends/s3.ts) vs @aws-sdk/client-s3 on the same S3 server,
// taking turns: small-object put/get/head rate and large-object throughput, plus client CPU per
// operation (on a loopback server the server's CPU is the limit, so client CPU is the fair figure).
//
//   eval "$(scripts/radosgw/start.sh)"
//   npx tsc -p . --outDir /tmp/dist-s3 && node /tmp/dist-s3/bench/s3/client-compare.js [rounds]
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  DeleteObjectCommand,
} from '@aws-sdk/client-s3';
import { openS3Store } from '../../src/object/backends/s3.js';
import { parseS3Url } from '../../src/object/backends/s3-url.js';
import { resolveAwsSettings } from '../../src/object/backends/s3-credentials.js';
import { flagError, parseFlags } from '../common/args.js';

const USAGE = `Usage: eval "$(scripts/radosgw/start.sh)"
  npx tsc -p . --outDir /tmp/dist-s3 && node /tmp/dist-s3/bench/s3/client-compare.js [rounds]`;
const { positionals } = parseFlags(USAGE, { allowPositionals: true });
if (positionals.length > 1) flagError(`one argument at most, the rounds, not ${positionals.length}`);

interface Client {
  name: string;
  put(key: string, data: Buffer): Promise<void>;
  get(key: string): Promise<Buffer>;
  head(key: string): Promise<void>;
  del(key: string): Promise<void>;
  close(): Promise<void>;
}

const url = process.env.STRATA_S3_TEST_URL;
if (!url) throw new Error('set STRATA_S3_TEST_URL (eval "$(scripts/radosgw/start.sh)")');
const rounds = Number(positionals[0] ?? 3);
const CONCURRENCY = 16;
const prefix = `client-compare-${process.pid}`;

async function lean(): Promise<Client> {
  const store = await openS3Store(
    url!.replace(/^(s3:\/\/[^/?]+)/, `$1/${prefix}`) + `&max_in_flight=${CONCURRENCY}`,
  );
  return {
    name: 'lean',
    put: (k, d) => store.put(k, d),
    get: (k) => store.get(k),
    head: async (k) => void (await store.head(k)),
    del: (k) => store.delete(k),
    close: () => store.close(),
  };
}

async function sdk(): Promise<Client> {
  const loc = parseS3Url(url!);
  const { credentials } = resolveAwsSettings();
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const client = new S3Client({
    endpoint: loc.endpoint.origin,
    region: loc.region ?? 'us-east-1',
    forcePathStyle: loc.pathStyle,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    requestHandler: { httpAgent: agent },
    // Newer SDKs add CRC32 trailers by default; ask for what the lean client does (signed SHA-256 only).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const Bucket = loc.bucket;
  const full = (k: string) => `${prefix}/${k}`;
  return {
    name: 'aws-sdk',
    put: async (k, d) => void (await client.send(new PutObjectCommand({ Bucket, Key: full(k), Body: d }))),
    get: async (k) => {
      const res = await client.send(new GetObjectCommand({ Bucket, Key: full(k) }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    head: async (k) => void (await client.send(new HeadObjectCommand({ Bucket, Key: full(k) }))),
    del: async (k) => void (await client.send(new DeleteObjectCommand({ Bucket, Key: full(k) }))),
    close: async () => {
      client.destroy();
      agent.destroy();
    },
  };
}

async function pool(count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

interface Sample {
  opsPerSecond: number;
  cpuUsPerOp: number;
}

async function measure(count: number, work: (i: number) => Promise<void>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(count, work);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { opsPerSecond: count / seconds, cpuUsPerOp: (cpu.user + cpu.system) / count };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const small = randomBytes(4096);
  const big = randomBytes(4 * 1024 * 1024);
  const SMALL = 400;
  const BIG = 32;
  const results = new Map<string, Sample[]>();
  const record = (key: string, s: Sample) => results.set(key, [...(results.get(key) ?? []), s]);
  for (let round = 0; round < rounds; round++) {
    for (const make of round % 2 === 0 ? [lean, sdk] : [sdk, lean]) {
      const c = await make();
      record(`${c.name} put 4KiB`, await measure(SMALL, (i) => c.put(`s${i}`, small)));
      record(`${c.name} get 4KiB`, await measure(SMALL, async (i) => void (await c.get(`s${i}`))));
      record(`${c.name} head`, await measure(SMALL, (i) => c.head(`s${i}`)));
      record(`${c.name} put 4MiB`, await measure(BIG, (i) => c.put(`b${i}`, big)));
      record(`${c.name} get 4MiB`, await measure(BIG, async (i) => void (await c.get(`b${i}`))));
      await pool(SMALL, (i) => c.del(`s${i}`));
      await pool(BIG, (i) => c.del(`b${i}`));
      await c.close();
    }
  }
  console.log(`| operation (${CONCURRENCY} in flight, median of ${rounds}) | ops/s | client CPU µs/op |`);
  console.log('|---|---|---|');
  for (const [key, samples] of [...results].sort()) {
    const ops = median(samples.map((s) => s.opsPerSecond));
    const cpu = median(samples.map((s) => s.cpuUsPerOp));
    console.log(`| ${key} | ${ops.toFixed(0)} | ${cpu.toFixed(0)} |`);
  }
}

await main();
