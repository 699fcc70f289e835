// Child process of the crash test: runs creates, mkdirs and renames through the service as
// fast as it can, printing one line per acknowledged operation, until it is killed (-9).
import { openMetaService } from '../../../src/meta/index.js';
import type { Ino } from '../../../src/common/index.js';
import { isDirStep, replaceTarget } from './crash-plan.js';

const root = { uid: 0, gid: 0, pid: 1 };
const ROOT = 1 as Ino;
const WORKERS = 16;

async function main(): Promise<void> {
  const url = process.argv[2];
  const svc = await openMetaService({ engineUrl: url, background: false });
  const a = (await svc.mkdir(root, ROOT, 'a', 0o755, 0)).ino;
  const b = (await svc.mkdir(root, ROOT, 'b', 0o755, 0)).ino;
  process.stdout.write(`ready ${a} ${b}\n`);
  const worker = async (k: number) => {
    for (let i = 0; ; i++) {
      const name = `w${k}_${i}`;
      if (isDirStep(i)) await svc.mkdir(root, a, name, 0o755, 0);
      else await svc.mknod(root, a, name, 0o100644, 0, 0);
      process.stdout.write(`c ${name}\n`);
      await svc.rename(root, a, name, b, name, 0);
      process.stdout.write(`r ${name}\n`);
      // replace an earlier file by rename: the old target must vanish with its inode
      const old = replaceTarget(k, i);
      if (old) {
        await svc.rename(root, b, name, b, old, 0);
        process.stdout.write(`x ${name} ${old}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, k) => worker(k)));
}

main().catch((error: unknown) => {
  process.stderr.write(`crash child failed: ${String(error)}\n`);
  process.exit(1);
});
