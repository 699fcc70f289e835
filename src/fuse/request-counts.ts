import { LatencyHistograms } from '../common/index.js';
import { opcodeName } from './ops.js';

/** Every FUSE opcode is below 64; the last slot collects the others (CUSE's 4096). */
const OPCODE_SLOTS = 64;

/** One opcode's counts, and where its handling times are kept (`histograms`, series `series`). */
export interface OpcodeCounts {
  opcode: string;
  requests: number;
  errors: number;
  histograms: LatencyHistograms;
  series: number;
}

/**
 * Requests and error replies by opcode, for metrics: a plain increment per request; and how
 * long their handlers took (two clock reads, a bucket scan and two increments per request,
 * about 1% of an lstat's mount CPU: bench/RESULTS.md, "Metrics overhead").
 */
export class RequestCounts {
  private readonly requests = new Float64Array(OPCODE_SLOTS);
  private readonly errors = new Float64Array(OPCODE_SLOTS);
  /** Handler time by opcode slot: from the request decoded to its handler done (reply sent). */
  private readonly latency = new LatencyHistograms(OPCODE_SLOTS);

  request(opcode: number): void {
    this.requests[opcode < OPCODE_SLOTS ? opcode : OPCODE_SLOTS - 1]++;
  }

  error(opcode: number): void {
    this.errors[opcode < OPCODE_SLOTS ? opcode : OPCODE_SLOTS - 1]++;
  }

  timed(opcode: number, durationMs: number): void {
    this.latency.observe(opcode < OPCODE_SLOTS ? opcode : OPCODE_SLOTS - 1, durationMs);
  }

  /** By opcode name, the opcodes seen so far. */
  byOpcode(): OpcodeCounts[] {
    const rows: OpcodeCounts[] = [];
    for (let opcode = 0; opcode < OPCODE_SLOTS; opcode++) {
      const requests = this.requests[opcode]!;
      if (requests === 0) continue;
      const name = opcode === OPCODE_SLOTS - 1 ? 'OTHER' : opcodeName(opcode);
      rows.push({
        opcode: name,
        requests,
        errors: this.errors[opcode]!,
        histograms: this.latency,
        series: opcode,
      });
    }
    return rows;
  }
}
