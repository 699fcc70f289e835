import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { Ino } from '../../src/common/index.js';
import type { LentBytes, RequestContext } from '../../src/fuse/index.js';
import { MemFs } from './memfs.js';
import { mountInProcess, sh } from './mount-helper.js';

/**
 * A MemFs that lends each READ a buffer of its own and scribbles over it the moment it gets it
 * back: a layer that used the bytes after `done()` would send the scribble.
 */
class LendingMemFs extends MemFs {
  lent = 0;
  returned = 0;
  returnedTwice = 0;

  async readLent(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    size: number,
  ): Promise<LentBytes> {
    const data = Buffer.from(await this.read(ctx, ino, fh, offset, size));
    this.lent++;
    let back = false;
    return {
      data,
      done: () => {
        if (back) this.returnedTwice++;
        back = true;
        this.returned++;
        data.fill(0x5a);
      },
    };
  }
}

test('memory lent for a READ reply is given back once per reply, after the kernel has the bytes', async () => {
  const fs = new LendingMemFs();
  const mounted = await mountInProcess(fs);
  try {
    const content = randomBytes(3 * 1024 * 1024 + 4321);
    const path = `${mounted.mountpoint}/f`;
    await writeFile(path, content);
    const expected = createHash('sha256').update(content).digest('hex');
    // O_DIRECT: every read reaches the file system, whatever the page cache holds.
    for (const bs of ['1M', '4k', '192k']) {
      const got = (await sh(`dd if=${path} bs=${bs} iflag=direct status=none | sha256sum`)).split(' ')[0];
      assert.equal(got, expected, `dd bs=${bs}`);
    }
    // And through the page cache (buffered reads, the kernel's readahead).
    await sh(`echo 1 > /proc/sys/vm/drop_caches`);
    assert.equal((await sh(`sha256sum < ${path}`)).split(' ')[0], expected, 'buffered read');
    assert.ok(fs.lent >= 3 + 769 + 17, `every READ borrowed (${fs.lent})`);
    assert.equal(fs.returned, fs.lent, 'each loan came back');
    assert.equal(fs.returnedTwice, 0);
  } finally {
    await mounted.cleanup();
  }
});
