// A CPU quota for one process through a cgroup of its own, so that metadata servers sharing this
// machine each get what a small machine of their own would give them: on a box whose CPUs one
// server and PostgreSQL already fill, adding servers cannot add throughput, and only servers with
// a fixed share each show whether the design scales out. cgroup v2 (cpu.max) where the cpu
// controller is offered there, else v1 (cpu.cfs_quota_us); needs root.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PERIOD_US = 100_000;

interface Hierarchy {
  dir: string;
  version: 1 | 2;
}

function findHierarchy(): Hierarchy {
  for (const dir of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const controllers = join(dir, 'cgroup.controllers');
    if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('cpu')) {
      return { dir, version: 2 };
    }
  }
  if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) return { dir: '/sys/fs/cgroup/cpu', version: 1 };
  throw new Error(
    'no cgroup cpu controller found (neither cgroup v2 with "cpu" in cgroup.controllers nor ' +
      '/sys/fs/cgroup/cpu): run as root on a machine with cgroups, or leave out --server-cpu',
  );
}

export class CpuQuota {
  private constructor(private readonly dir: string) {}

  /** Puts `pid` (all its threads) into a new cgroup limited to `cpus` CPUs (0.5 = half of one). */
  static limit(pid: number, name: string, cpus: number): CpuQuota {
    const hierarchy = findHierarchy();
    const dir = join(hierarchy.dir, name);
    mkdirSync(dir, { recursive: true });
    const quotaUs = Math.max(1000, Math.round(cpus * PERIOD_US));
    if (hierarchy.version === 2) {
      writeFileSync(join(dir, 'cpu.max'), `${quotaUs} ${PERIOD_US}`);
    } else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    return new CpuQuota(dir);
  }

  /** Removes the cgroup; call after its process exited (a cgroup with members cannot go). */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch (error) {
      console.error(`could not remove ${this.dir}: ${(error as Error).message}`);
    }
  }
}
