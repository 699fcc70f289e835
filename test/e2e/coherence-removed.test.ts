import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, sh, startUp, StrataProcess, tempDir } from './harness.js';

// fstat of a removed inode through a hold that never opened it in FUSE, on a real mount: an
// O_PATH descriptor (and stat of its /proc/self/fd link), and a working directory. Linux file
// systems answer with the last attributes and nlink 0 while the kernel holds the inode; the
// metadata service has deleted the row by then (no session has it open), so the mount answers
// from what the removal's reply said (src/vfs/special-nodes.ts).
const root = tempDir('coherence-removed');
const script = join(root, 'removed.py');
const procs: StrataProcess[] = [];
const mounts: string[] = [];

const REMOVED_PY = `
import json, os, sys
d = sys.argv[1]
out = {}
def kept(st):
    return {"nlink": st.st_nlink, "size": st.st_size, "mode": oct(st.st_mode)}

p = os.path.join(d, "o-path")
with open(p, "w") as f:
    f.write("twelve bytes")
os.chmod(p, 0o640)
fd = os.open(p, os.O_PATH)
os.unlink(p)
out["o_path"] = kept(os.fstat(fd))
out["proc_fd"] = kept(os.stat(f"/proc/self/fd/{fd}"))
os.close(fd)

a, b = os.path.join(d, "link-a"), os.path.join(d, "link-b")
with open(a, "w") as f:
    f.write("xy")
os.link(a, b)
fd = os.open(a, os.O_PATH)
os.unlink(a)
out["one_link_left"] = kept(os.fstat(fd))
os.unlink(b)
out["no_link_left"] = kept(os.fstat(fd))
os.close(fd)

target, mover = os.path.join(d, "target"), os.path.join(d, "mover")
with open(target, "w") as f:
    f.write("old")
with open(mover, "w") as f:
    f.write("new!")
fd = os.open(target, os.O_PATH)
os.rename(mover, target)
out["renamed_over"] = kept(os.fstat(fd))
os.close(fd)

cwd = os.path.join(d, "cwd")
os.mkdir(cwd, 0o750)
os.chdir(cwd)
os.rmdir(cwd)
out["cwd"] = kept(os.stat("."))
print(json.dumps(out))
`;

before(() => {
  writeFileSync(script, REMOVED_PY);
});

after(async () => {
  await cleanup(procs, mounts, [root]);
});

test('fstat of a removed file through O_PATH or /proc/self/fd, and stat of a removed working directory, show the last attributes with nlink 0', async () => {
  const mnt = join(root, 'mnt');
  mounts.push(mnt);
  procs.push(await startUp(join(root, 'data'), mnt));
  const out = JSON.parse(sh(`umask 022 && python3 ${script} ${mnt}`)) as Record<string, unknown>;
  assert.deepEqual(out.o_path, { nlink: 0, size: 12, mode: '0o100640' });
  assert.deepEqual(out.proc_fd, { nlink: 0, size: 12, mode: '0o100640' });
  assert.deepEqual(out.one_link_left, { nlink: 1, size: 2, mode: '0o100644' });
  assert.deepEqual(out.no_link_left, { nlink: 0, size: 2, mode: '0o100644' });
  assert.deepEqual(out.renamed_over, { nlink: 0, size: 3, mode: '0o100644' });
  assert.deepEqual(out.cwd, { nlink: 0, size: 0, mode: '0o40750' });
});
