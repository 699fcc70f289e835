// Protocol fuzzing of the FUSE layer without a kernel: malformed and random
// request frames go to the real FuseSession (fuse-fuzz-target.ts) through a
// SOCK_SEQPACKET pair that keeps /dev/fuse's one-message-per-read boundaries.
// Every frame with a well-formed header must get exactly one well-formed reply
// (or none, for the opcodes the kernel never expects answered); the server must
// never crash nor hang.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildHelper, repoRoot } from './executor.js';
import { Random } from './generator.js';
import { distDir } from './strata-mount.js';

// Opcodes from linux/fuse.h, written out here as an independent oracle.
const OP = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  MKDIR: 9,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  SETXATTR: 21,
  INIT: 26,
  SETLKW: 33,
  INTERRUPT: 36,
  DESTROY: 38,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  CREATE: 35,
  RENAME2: 45,
} as const;
const NO_REPLY = new Set<number>([OP.FORGET, OP.INTERRUPT, OP.NOTIFY_REPLY, OP.BATCH_FORGET]);
// DESTROY ends the session and SETLKW may wait for a lock forever, legitimately.
const NEVER_RANDOM = new Set<number>([OP.DESTROY, OP.SETLKW]);
const IN_HEADER_BYTES = 40;
/** READ, READDIR, READDIRPLUS: a size at offset 16 the kernel bounds by max_read. */
const SIZED_READS = new Set<number>([15, 28, 44]);
const MAX_IO_BYTES = 1 << 20;
const OUT_HEADER_BYTES = 16;
const MAX_ERRNO = 4095;

/** Why fuzzing cannot run from this build, or undefined when it can. */
export function fuseFuzzUnavailable(): string | undefined {
  const target = join(distDir(), 'test', 'reliability', 'fuse-fuzz-target.js');
  const addon = join(repoRoot(), 'native', 'fdpoll', 'build', 'Release', 'fdpoll.node');
  if (!existsSync(join(distDir(), 'src', 'fuse', 'session.js')))
    return 'the FUSE session is not in this build';
  if (!existsSync(target)) return `${target} missing`;
  if (!existsSync(addon)) return `native addon ${addon} not built (npm run build)`;
  return undefined;
}

function header(len: number, opcode: number, unique: bigint, nodeid: bigint, r: Random): Buffer {
  const h = Buffer.alloc(IN_HEADER_BYTES);
  h.writeUInt32LE(len >>> 0, 0);
  h.writeUInt32LE(opcode >>> 0, 4);
  h.writeBigUInt64LE(unique, 8);
  h.writeBigUInt64LE(nodeid, 16);
  h.writeUInt32LE(r.pick([0, 0, 2001, 0xffffffff]), 24);
  h.writeUInt32LE(r.pick([0, 0, 2001, 0xffffffff]), 28);
  h.writeUInt32LE(r.int(100000), 32);
  return h;
}

function frame(opcode: number, unique: bigint, nodeid: bigint, body: Buffer, r: Random): Buffer {
  return Buffer.concat([header(IN_HEADER_BYTES + body.length, opcode, unique, nodeid, r), body]);
}

function initBody(): Buffer {
  const body = Buffer.alloc(64);
  body.writeUInt32LE(7, 0); // major
  body.writeUInt32LE(45, 4); // minor
  body.writeUInt32LE(128 * 1024, 8); // max_readahead
  body.writeUInt32LE(0xffffffff, 12); // flags: everything offered, the server picks
  return body;
}

function randomBytes(r: Random, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = r.int(256);
  return b;
}

/** Names, sometimes without their NUL terminator or with embedded slashes and NULs. */
function nameBytes(r: Random): Buffer {
  const name = r.pick(['a', 'b', '..', '.', 'x/y', 'long'.repeat(80), '', 'n\u00e9']);
  const bytes = Buffer.from(name, 'utf8');
  if (r.chance(0.3)) return bytes;
  if (r.chance(0.1)) return Buffer.concat([bytes, Buffer.from([0]), bytes, Buffer.from([0])]);
  return Buffer.concat([bytes, Buffer.from([0])]);
}

function nodeid(r: Random, known: bigint[]): bigint {
  const roll = r.next();
  if (roll < 0.5 && known.length > 0) return r.pick(known);
  if (roll < 0.7) return 1n;
  return r.pick([0n, 2n, 3n, 0xffffffffffffffffn, 1n << 53n, BigInt(r.int(1 << 30))]);
}

interface Planned {
  bytes: Buffer;
  /** The unique id a reply must carry, or null when no reply may come. */
  expectReply: bigint | null;
}

/** One fuzz frame: mostly structurally valid headers with hostile bodies. */
function plan(r: Random, unique: bigint, known: bigint[], oversize: boolean): Planned {
  const roll = r.next();
  let opcode: number;
  let body: Buffer;
  if (roll < 0.3) {
    // Any opcode (including unknown ones) with a random body.
    do opcode = r.chance(0.9) ? r.int(55) : r.pick([55, 4096, 0xffffffff]);
    while (NEVER_RANDOM.has(opcode));
    body = randomBytes(r, r.pick([0, 1, 7, 8, 16, 24, 40, 64, 100, 300]));
    if (!oversize && SIZED_READS.has(opcode) && body.length >= 20) {
      body.writeUInt32LE(body.readUInt32LE(16) % (MAX_IO_BYTES + 1), 16);
    }
  } else if (roll < 0.5) {
    // Namespace operations with plausible structs and hostile names.
    opcode = r.pick([OP.LOOKUP, OP.MKDIR, OP.CREATE, OP.RENAME2, OP.SETXATTR]);
    const fixed =
      opcode === OP.LOOKUP
        ? 0
        : opcode === OP.MKDIR
          ? 8
          : opcode === OP.CREATE
            ? 16
            : opcode === OP.RENAME2
              ? 16
              : 16;
    const struct = randomBytes(r, fixed);
    if (opcode === OP.RENAME2 && r.chance(0.7))
      struct.writeBigUInt64LE(r.pick(known.length ? known : [1n]), 0);
    body = Buffer.concat([struct, nameBytes(r), r.chance(0.5) ? nameBytes(r) : Buffer.alloc(0)]);
  } else if (roll < 0.7) {
    // READ / WRITE / SETATTR with extreme sizes and offsets.
    opcode = r.pick([OP.READ, OP.WRITE, OP.SETATTR, OP.OPEN, OP.GETATTR]);
    const struct = Buffer.alloc(opcode === OP.SETATTR ? 88 : 40);
    struct.writeBigUInt64LE(BigInt(r.int(8)), 0); // fh
    struct.writeBigUInt64LE(r.pick([0n, 4096n, 1n << 40n, (1n << 63n) - 1n, 0xffffffffffffffffn]), 8);
    // The kernel never asks for more than max_read / max_write (1 MiB here); sizes
    // beyond it are a separate, opt-in probe (`oversize`).
    const sizes = oversize ? [0x7fffffff, 0xffffffff] : [0, 1, 4096, MAX_IO_BYTES];
    struct.writeUInt32LE(r.pick(sizes), 16);
    if (opcode === OP.SETATTR) struct.writeUInt32LE(r.int(1 << 16), 0);
    const data = opcode === OP.WRITE ? randomBytes(r, r.pick([0, 10, 4096])) : Buffer.alloc(0);
    body = Buffer.concat([struct.subarray(0, r.chance(0.2) ? r.int(struct.length) : struct.length), data]);
  } else if (roll < 0.8) {
    // Frames the kernel never answers: FORGET storms on any inode.
    opcode = r.pick([OP.FORGET, OP.BATCH_FORGET, OP.INTERRUPT, OP.NOTIFY_REPLY]);
    body = randomBytes(r, r.pick([0, 8, 16, 24, 40]));
    if (opcode === OP.BATCH_FORGET && body.length >= 8)
      body.writeUInt32LE(r.pick([1, 2, 1000, 0xffffffff]), 0);
  } else if (roll < 0.9) {
    // A header whose length disagrees with the frame: must be dropped, not trusted.
    opcode = r.int(50);
    body = randomBytes(r, r.int(64));
    const bytes = frame(opcode, unique, nodeid(r, known), body, r);
    bytes.writeUInt32LE(r.pick([0, 1, 39, bytes.length + 1, bytes.length - 1, 0xffffffff]) >>> 0, 0);
    return { bytes, expectReply: null };
  } else if (roll < 0.95) {
    // Shorter than a header.
    return { bytes: randomBytes(r, r.int(IN_HEADER_BYTES)), expectReply: null };
  } else {
    opcode = OP.INIT; // a second INIT
    body = r.chance(0.5) ? initBody() : randomBytes(r, r.int(64));
  }
  return {
    bytes: frame(opcode, unique, nodeid(r, known), body, r),
    expectReply: NO_REPLY.has(opcode) ? null : unique,
  };
}

export interface FuzzOptions {
  seed: number;
  frameCount: number;
  /** A frame not answered within this long counts as a hang. */
  replyTimeoutMs?: number;
  /** Give READ/WRITE/SETATTR sizes beyond the negotiated 1 MiB maximum (a kernel never sends them). */
  oversize?: boolean;
}

export interface FuzzResult {
  framesSent: number;
  repliesChecked: number;
  /** Crashes, hangs and malformed replies, each with the seed and frame that caused it. */
  problems: string[];
}

/** Sends `frameCount` seeded fuzz frames to a fresh FuseSession and checks every answer. */
export async function fuzzFuseFrames(options: FuzzOptions): Promise<FuzzResult> {
  const relay = buildHelper('seqpacket-relay');
  const target = join(distDir(), 'test', 'reliability', 'fuse-fuzz-target.js');
  const child = spawn(relay, [process.execPath, target], { stdio: ['pipe', 'pipe', 'pipe'] });
  const conn = new FrameConnection(child);
  const r = new Random(options.seed);
  const timeoutMs = options.replyTimeoutMs ?? 10_000;
  const problems: string[] = [];
  let framesSent = 0;
  let repliesChecked = 0;
  let unique = 1n;
  const known: bigint[] = [1n];
  const exchange = async (bytes: Buffer, expect: bigint, what: string): Promise<Buffer | undefined> => {
    const reply = await conn.waitFor(expect, timeoutMs);
    if (typeof reply === 'string') {
      problems.push(
        `seed ${options.seed} frame ${framesSent} (${what}, ${bytes.toString('hex').slice(0, 160)}): ${reply}`,
      );
      return undefined;
    }
    repliesChecked++;
    const len = reply.readUInt32LE(0);
    const error = reply.readInt32LE(4);
    if (len !== reply.length || error > 0 || error < -MAX_ERRNO || (error < 0 && len !== OUT_HEADER_BYTES)) {
      problems.push(
        `seed ${options.seed} frame ${framesSent} (${what}): malformed reply ${reply.toString('hex').slice(0, 80)}`,
      );
    }
    return reply;
  };
  try {
    const init = frame(OP.INIT, unique, 0n, initBody(), r);
    conn.send(init);
    const initReply = await exchange(init, unique++, 'INIT');
    if (!initReply || initReply.readInt32LE(4) !== 0) {
      problems.push(`seed ${options.seed}: INIT was not accepted`);
      return { framesSent, repliesChecked, problems };
    }
    while (framesSent < options.frameCount && problems.length === 0) {
      const planned = plan(r, unique, known, options.oversize ?? false);
      conn.send(planned.bytes);
      framesSent++;
      let reply: Buffer | undefined;
      if (planned.expectReply !== null) {
        reply = await exchange(planned.bytes, unique, `opcode ${planned.bytes.readUInt32LE(4)}`);
      }
      unique++;
      // An entry reply names a new inode: later frames aim at it too.
      if (reply && reply.length >= OUT_HEADER_BYTES + 8 && reply.readInt32LE(4) === 0) {
        const opcode = planned.bytes.readUInt32LE(4);
        if (opcode === OP.LOOKUP || opcode === OP.MKDIR || opcode === OP.CREATE) {
          const ino = reply.readBigUInt64LE(OUT_HEADER_BYTES);
          if (ino !== 0n && known.length < 64) known.push(ino);
        }
      }
      // After a frame that gets no answer, prove the server still answers.
      if (planned.expectReply === null) {
        const probe = frame(OP.GETATTR, unique, 1n, Buffer.alloc(16), r);
        conn.send(probe);
        await exchange(probe, unique++, `GETATTR probe after ${planned.bytes.toString('hex').slice(0, 160)}`);
      }
    }
  } finally {
    await conn.close();
  }
  return { framesSent, repliesChecked, problems };
}

/** Length-prefixed frames to and from the relay, replies matched by unique id. */
class FrameConnection {
  private pending = Buffer.alloc(0);
  private readonly replies = new Map<bigint, Buffer>();
  private wake: (() => void) | undefined;
  private exitStatus: string | undefined;
  private stderr = '';
  private readonly exited: Promise<void>;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4096);
    });
    child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitStatus = `the FUSE server exited (status ${code}, signal ${signal}): ${this.stderr.trim()}`;
        this.wake?.();
        resolve();
      }),
    );
  }

  send(bytes: Buffer): void {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length, 0);
    this.child.stdin.write(Buffer.concat([length, bytes]));
  }

  private onData(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 4) {
      const length = this.pending.readUInt32LE(0);
      if (this.pending.length < 4 + length) break;
      const packet = this.pending.subarray(4, 4 + length);
      this.pending = this.pending.subarray(4 + length);
      // unique 0 marks a notification; anything shorter than a header is itself malformed.
      const unique = packet.length >= OUT_HEADER_BYTES ? packet.readBigUInt64LE(8) : -1n;
      if (unique !== 0n) this.replies.set(unique, Buffer.from(packet));
    }
    this.wake?.();
  }

  /** The reply to `unique`, or a description of why none came. */
  async waitFor(unique: bigint, timeoutMs: number): Promise<Buffer | string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.replies.get(unique);
      if (reply) {
        this.replies.delete(unique);
        if (this.replies.size > 0)
          return `unexpected extra replies for ${[...this.replies.keys()].join(', ')}`;
        return reply;
      }
      if (this.exitStatus) return this.exitStatus;
      const left = deadline - Date.now();
      if (left <= 0) return `no reply in ${timeoutMs} ms: the server hangs`;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.exitStatus) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
