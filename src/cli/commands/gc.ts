import type { Command } from 'commander';
import { formatBytes, parseDurationMs } from '../../common/index.js';
import { engineScheme, openMetaService, type Engine } from '../../meta/index.js';
import { openObjectStore, type ObjectStore } from '../../object/index.js';
import {
  GC_DEFAULTS,
  collectGarbage,
  describeGcReport,
  reclaimLeakedObjects,
  scanLeakedObjects,
  type GcReport,
} from '../../ops/index.js';
import { claimEngine, redactUrl, type EngineClaim } from '../../volume/index.js';
import { UsageError, checkEngineUrl, checkStorageUrl } from '../options.js';
import { requireExistingEngine } from './meta-admin.js';

/** A session renewed this recently means a server (strata up / meta serve) has the volume open. */
const LIVE_SESSION_MS = 2 * 60_000;

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description(
      'delete the objects of slices no retained version of the volume refers to (their deletion is older ' +
        'than the history retention plus a safety margin), then forget them; prints what it deleted. ' +
        '"strata up" does this in the background every minute',
    )
    .requiredOption(
      '--engine <URL>',
      'metadata engine, e.g. sqlite:/var/lib/strata/meta.db or postgres://...',
    )
    .option('--storage <URL>', 'object store (default: the one recorded at format)')
    .option('--dry-run', 'print what would be deleted; change nothing')
    .option(
      '--scan-leaked',
      'instead: list the store and report block objects of slices the metadata knows nothing of ' +
        '(uploads whose commit never happened, or that a writer still holds); reports only, deletes nothing',
    )
    .option(
      '--reclaim-leaked',
      'instead: delete the block objects of slices the metadata knows nothing of that no mount can still ' +
        "commit (below every mount's slice floor); a mount older than slice floors stops it, named",
    )
    .option(
      '--safety-margin <DURATION>',
      `wait this long past the retention window (default ${GC_DEFAULTS.safetyMarginMs / 1000}s): ` +
        'covers clock differences between servers and reads in flight from slice lists mounts hold',
    )
    .action(async (options: Record<string, unknown>) => {
      const engineUrl = checkEngineUrl(String(options.engine));
      const storageOverride =
        typeof options.storage === 'string' ? checkStorageUrl(options.storage) : undefined;
      let safetyMarginMs: number | undefined;
      if (options.safetyMargin !== undefined) {
        try {
          safetyMarginMs = parseDurationMs(String(options.safetyMargin), '--safety-margin');
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
      }
      const dryRun = options.dryRun === true;
      const scan = options.scanLeaked === true;
      const reclaim = options.reclaimLeaked === true;
      if (scan && reclaim)
        throw new UsageError('--scan-leaked and --reclaim-leaked: give one (the scan is the dry run)');
      if (dryRun && reclaim)
        throw new UsageError('--dry-run with --reclaim-leaked: use --scan-leaked to see leaked blocks');
      requireExistingEngine(engineUrl);
      // Deleting forgets rows: on SQLite only with no server writing beside (see claimEngine).
      const claim: EngineClaim | undefined =
        dryRun || scan
          ? undefined
          : await claimEngine(
              engineUrl,
              '"strata up" and "strata meta serve" collect garbage in the background by themselves (their log and --metrics show it); ' +
                'otherwise stop the server first (--dry-run works beside it)',
            );
      const service = await openMetaService({ engineUrl, background: false }).catch(
        async (error: unknown) => {
          await claim?.release();
          throw error;
        },
      );
      let store: ObjectStore | undefined;
      try {
        if (!dryRun && !scan && engineScheme(engineUrl) === 'sqlite') await refuseWhileServed(service.engine);
        const volume = await service.volume();
        const storageUrl = storageOverride ?? volume.storageUrl;
        if (storageUrl === '') throw new Error('the volume records no object store; give --storage URL');
        store = await openObjectStore(storageUrl);
        if (scan) {
          await reportLeaked(service.engine, store, storageUrl);
          return;
        }
        if (reclaim) {
          // No server runs beside (claimed above): sessions left are of mounts that died, and
          // their floors would hold the reclaim back for good. A server ends them the same way.
          if (engineScheme(engineUrl) === 'sqlite') await service.expireSessions();
          await reclaimLeaked(service.engine, store, storageUrl);
          return;
        }
        const progress = (r: GcReport): void => {
          process.stderr.write(
            `gc: ${r.slices} slice(s), ${r.objects} object(s), ${formatBytes(r.bytes)} ${r.dryRun ? 'found' : 'deleted'} so far\n`,
          );
        };
        const report = await collectGarbage({
          engine: service.engine,
          store,
          historyRetentionMs: volume.historyRetentionMs,
          blockSizeBytes: volume.blockSizeBytes,
          safetyMarginMs,
          dryRun,
          onProgress: progress,
        });
        const cutoff = new Date(Math.floor(report.cutoffUs / 1000)).toISOString();
        process.stdout.write(
          `gc ${redactUrl(engineUrl)} in ${redactUrl(storageUrl)}: ${describeGcReport(report)} ` +
            `(slices deleted before ${cutoff})\n`,
        );
      } finally {
        await store?.close();
        await service.close();
        await claim?.release();
      }
    });
}

/**
 * A SQLite volume has one writer: a second process committing next to a running server would
 * overwrite counters the server keeps in memory. The server of `strata up` collects on its own.
 */
async function refuseWhileServed(engine: Engine): Promise<void> {
  const sessions = await engine.read((tx) => tx.listSessions());
  const nowMs = Date.now();
  const live = sessions.find((s) => nowMs - s.heartbeatUs / 1000 < LIVE_SESSION_MS);
  if (live === undefined) return;
  throw new Error(
    `the volume is in use (mount ${live.info.hostname}:${live.info.mountpoint} was seen ` +
      `${Math.round((nowMs - live.heartbeatUs / 1000) / 1000)}s ago): a SQLite volume takes one writer. ` +
      '"strata up" and "strata meta serve" collect garbage in the background by themselves; otherwise unmount and stop the server first ' +
      '(--dry-run works while it runs)',
  );
}

async function reportLeaked(engine: Engine, store: ObjectStore, storageUrl: string): Promise<void> {
  const report = await scanLeakedObjects({
    engine,
    store,
    onProgress: (r) => process.stderr.write(`gc: ${r.objectsScanned} object(s) scanned\n`),
  });
  const lines = [
    `scan of ${redactUrl(storageUrl)}: ${report.objectsScanned} block object(s); ` +
      `${report.unknownObjects} object(s), ${formatBytes(report.unknownBytes)} of ${report.unknownSlices} ` +
      'slice(s) the metadata knows nothing of',
  ];
  if (report.unknownSlices > 0) {
    lines.push(
      `  slice ids (lowest ${report.sample.length}): ${report.sample.join(' ')}`,
      '  they are uploads whose commit never happened, or that a mount still holds for an open file; ' +
        'nothing was deleted (a live writer may still commit them)',
    );
  }
  if (report.foreignObjects > 0)
    lines.push(`  ${report.foreignObjects} object(s) under chunks/ are not blocks (left alone)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function reclaimLeaked(engine: Engine, store: ObjectStore, storageUrl: string): Promise<void> {
  const report = await reclaimLeakedObjects({
    engine,
    store,
    onProgress: (r) =>
      process.stderr.write(
        `gc: ${r.objectsScanned} object(s) scanned, ${r.reclaimedObjects} (${formatBytes(r.reclaimedBytes)}) deleted\n`,
      ),
  });
  if (report.blockedBy !== undefined) {
    throw new Error(
      `reclaiming leaked blocks in ${redactUrl(storageUrl)} stopped, nothing deleted: ${report.blockedBy}`,
    );
  }
  const lines = [
    `reclaim of ${redactUrl(storageUrl)}: reclaim floor ${report.floor} (was ${report.previousFloor}); ` +
      `${report.objectsScanned} block object(s) scanned; deleted ${report.reclaimedObjects} object(s), ` +
      `${formatBytes(report.reclaimedBytes)} of ${report.reclaimedSlices} leaked slice(s)`,
  ];
  if (report.heldSlices > 0) {
    lines.push(
      `  ${report.heldSlices} slice(s) (${formatBytes(report.heldBytes)}) the metadata knows nothing of are at or ` +
        'above the floor: a mount may still commit them (left alone; a later pass takes what stays leaked)',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
