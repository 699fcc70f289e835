// The engine task of engine-thread-pass.ts: the real background collector (src/ops), run on the
// engine thread of an opened service, with every engine call it makes timed and the thread's
// event-loop delay sampled, so the bench sees what one pass costs the thread that serves calls.
import type { Engine, ReadTx, WriteTx } from '../../src/meta/index.js';
import type { StartEngineTask } from '../../src/meta/server/index.js';
import { openObjectStore } from '../../src/object/index.js';
import { startBackgroundGc, type GcReport } from '../../src/ops/index.js';
import { LoopDelayProbe } from '../common/loop-delay.js';

export interface TimedPassData {
  maxDeletesPerSecond: number;
  /** Instead of a pass, sit idle this long (the baseline of the same probe). */
  idleMs: number;
}

export interface EngineCallTiming {
  kind: 'read' | 'write';
  /** Inside the transaction: the statements and the collector's own work on their rows. */
  insideMs: number;
  /** From the call to its result: queueing behind other calls and the commit included. */
  wholeMs: number;
}

export interface TimedPassResult {
  report: GcReport | undefined;
  durationMs: number;
  calls: EngineCallTiming[];
  loopDelayMaxMs: number;
  loopDelayP99Ms: number;
}

export const startEngineTask: StartEngineTask = async (service, data, report) => {
  const { maxDeletesPerSecond, idleMs } = data as TimedPassData;
  const volume = await service.volume();
  const store = await openObjectStore(volume.storageUrl);
  const engine = service.engine;
  const calls: EngineCallTiming[] = [];
  const timed = Object.create(engine) as Engine;
  timed.read = async <T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> => {
    const started = performance.now();
    let insideMs = 0;
    const result = await engine.read(async (tx) => {
      const at = performance.now();
      const value = await fn(tx);
      insideMs += performance.now() - at;
      return value;
    });
    calls.push({ kind: 'read', insideMs, wholeMs: performance.now() - started });
    return result;
  };
  timed.write = async <T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> => {
    const started = performance.now();
    let insideMs = 0;
    const result = await engine.write(async (tx) => {
      const at = performance.now();
      const value = await fn(tx);
      insideMs += performance.now() - at;
      return value;
    });
    calls.push({ kind: 'write', insideMs, wholeMs: performance.now() - started });
    return result;
  };
  const collector = startBackgroundGc({
    engine: timed,
    store,
    volume,
    intervalMs: 3_600_000, // one pass, started below
    safetyMarginMs: 0,
    maxDeletesPerSecond,
    log: () => undefined,
  });
  const delay = new LoopDelayProbe();
  // After the opener is ready: the probe on the serving thread must be running first.
  setTimeout(() => {
    void (async () => {
      delay.enable();
      const started = performance.now();
      const passReport =
        idleMs > 0
          ? await new Promise<undefined>((done) => setTimeout(() => done(undefined), idleMs))
          : await collector.runNow();
      const durationMs = performance.now() - started;
      delay.disable();
      const result: TimedPassResult = {
        report: passReport,
        durationMs,
        calls,
        loopDelayMaxMs: delay.maxMs,
        loopDelayP99Ms: delay.percentileMs(99),
      };
      report(result);
    })();
  }, 200);
  return {
    stop: async () => {
      await collector.stop();
      await store.close();
    },
  };
};
