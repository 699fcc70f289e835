import { opcodeName } from './ops.js';

/** Every FUSE opcode is below 64; the last slot collects the others (CUSE's 4096). */
const OPCODE_SLOTS = 64;

/** Requests and error replies by opcode, for metrics: a plain increment per request. */
export class RequestCounts {
  private readonly requests = new Float64Array(OPCODE_SLOTS);
  private readonly errors = new Float64Array(OPCODE_SLOTS);

  request(opcode: number): void {
    this.requests[opcode < OPCODE_SLOTS ? opcode : OPCODE_SLOTS - 1]++;
  }

  error(opcode: number): void {
    this.errors[opcode < OPCODE_SLOTS ? opcode : OPCODE_SLOTS - 1]++;
  }

  /** By opcode name, the opcodes seen so far. */
  byOpcode(): { opcode: string; requests: number; errors: number }[] {
    const rows: { opcode: string; requests: number; errors: number }[] = [];
    for (let opcode = 0; opcode < OPCODE_SLOTS; opcode++) {
      const requests = this.requests[opcode]!;
      if (requests === 0) continue;
      const name = opcode === OPCODE_SLOTS - 1 ? 'OTHER' : opcodeName(opcode);
      rows.push({ opcode: name, requests, errors: this.errors[opcode]! });
    }
    return rows;
  }
}
