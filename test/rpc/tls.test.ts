import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno } from '../../src/common/index.js';
import { TestService, startTestServer, testClient } from './helpers.js';

let dir = '';
let key: Buffer;
let cert: Buffer;

before(() => {
  // A self-signed certificate for 127.0.0.1, made fresh for this run.
  dir = mkdtempSync(join(tmpdir(), 'strata-rpc-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  key = readFileSync(join(dir, 'key.pem'));
  cert = readFileSync(join(dir, 'cert.pem'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('calls round-trip over TLS with a self-signed certificate the client trusts', async () => {
  const server = await startTestServer(new TestService(), { tls: { key, cert } });
  const client = testClient(server.address, { tls: { ca: cert }, connections: 2 });
  try {
    const value = { name: 'x', data: Buffer.from([1, 2, 3]) };
    assert.deepEqual(await client.call('echo', [value], { idempotent: true }), value);
    const many = await Promise.all(
      Array.from({ length: 100 }, (_, i) => client.call('echo', [i], { idempotent: true })),
    );
    assert.deepEqual(
      many,
      Array.from({ length: 100 }, (_, i) => i),
    );
  } finally {
    await client.close();
    await server.close();
  }
});

test('a client that does not trust the certificate refuses the server at once', async () => {
  const server = await startTestServer(new TestService(), { tls: { key, cert } });
  const client = testClient(server.address, { tls: {} });
  try {
    await assert.rejects(client.call('echo', [1], { idempotent: true }), /self-signed certificate/);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a plaintext client cannot talk to a TLS server, and the server keeps serving', async () => {
  const service = new TestService();
  const server = await startTestServer(service, { tls: { key, cert } });
  const plain = testClient(server.address, { maxAttempts: 2 });
  const good = testClient(server.address, { tls: { ca: cert } });
  try {
    await assert.rejects(plain.call('bump', [], { idempotent: false }), {
      errno: Errno.EIO,
      message: /unreachable after 2 attempts/,
    });
    assert.equal(service.calls, 0);
    assert.equal(await good.call('echo', ['fine'], { idempotent: true }), 'fine');
  } finally {
    await plain.close();
    await good.close();
    await server.close();
  }
});
