import type { Command } from 'commander';
import { openMetaService } from '../../meta/index.js';
import { openObjectStore, type ObjectStore } from '../../object/index.js';
import { fsck, type FsckProblem } from '../../ops/index.js';
import { redactUrl } from '../../volume/index.js';
import { checkEngineUrl, checkStorageUrl } from '../options.js';
import { requireExistingEngine } from './meta-admin.js';

export function registerFsck(program: Command): void {
  program
    .command('fsck')
    .description(
      'check a volume: link counts, directory parents, entries naming missing inodes, usage counters, ' +
        'and that every block its files refer to exists in the object store; prints each problem with what to do. ' +
        'Exit code 0 when clean (or all repaired), 1 when problems remain',
    )
    .requiredOption(
      '--engine <URL>',
      'metadata engine, e.g. sqlite:/var/lib/strata/meta.db or postgres://...',
    )
    .option(
      '--storage <URL>',
      'object store to check blocks in, e.g. file:/var/lib/strata/objects (default: the one recorded at format)',
    )
    .option(
      '--repair',
      'fix what is safe from the metadata alone (link counts, directory parents, counters). ' +
        'Unmount every client and stop any "strata meta serve"/"strata up" on this engine first: ' +
        'a running server would keep its stale view, and repair refuses while client sessions are registered',
    )
    .action(async (options: Record<string, unknown>) => {
      const engineUrl = checkEngineUrl(String(options.engine));
      const storageOverride =
        typeof options.storage === 'string' ? checkStorageUrl(options.storage) : undefined;
      requireExistingEngine(engineUrl);
      const service = await openMetaService({ engineUrl, background: false });
      let store: ObjectStore | undefined;
      try {
        const storageUrl = storageOverride ?? (await service.volume()).storageUrl;
        if (storageUrl === '') {
          throw new Error('the volume records no object store; give --storage URL');
        }
        store = await openObjectStore(storageUrl);
        const report = await fsck({ engine: service.engine, store, repair: options.repair === true });
        const out = [
          `fsck ${redactUrl(engineUrl)}: ${report.inodes} inode(s), ${report.dentries} entr${report.dentries === 1 ? 'y' : 'ies'}, ` +
            `${report.blocksChecked} block(s) checked in ${redactUrl(storageUrl)}`,
        ];
        for (const p of report.problems) out.push(...describeProblem(p));
        const remaining = report.problems.filter((p) => !p.repaired).length;
        const repaired = report.problems.length - remaining;
        out.push(
          report.problems.length === 0
            ? 'clean: no problems found'
            : `${report.problems.length} problem(s): ${repaired} repaired, ${remaining} remain`,
        );
        process.stdout.write(`${out.join('\n')}\n`);
        if (remaining > 0) {
          const repairable = report.problems.some((p) => p.repairable && !p.repaired);
          throw new Error(
            `${remaining} problem(s) remain; follow the suggestions above` +
              (repairable ? ' (rerun with --repair for the ones marked repairable)' : ''),
          );
        }
      } finally {
        await store?.close();
        await service.close();
      }
    });
}

function describeProblem(p: FsckProblem): string[] {
  const state = p.repaired ? 'repaired' : p.repairable ? 'repairable' : 'needs you';
  return [`[${p.code}] ${p.message} (${state})`, `    -> ${p.suggestion}`];
}
