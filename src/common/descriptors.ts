import { open, type FileHandle } from 'node:fs/promises';
import { isOutOfDescriptors } from './errors.js';

/**
 * How long an open waits for a descriptor when the process has none left. A put or a log flush
 * holds one for a few milliseconds; a burst of them (many files fsync-ed together) under a low
 * `ulimit -n` ran out for a moment and failed 115 of 120 fsyncs with EIO at 40 descriptors.
 * Waiters take turns by chance, so one may wait long (5 s was not always enough there); half the
 * object store's retry budget, like an outage, before EIO.
 */
export const DESCRIPTOR_WAIT_MS = 30_000;

/**
 * open(2), waiting with backoff while the process is out of descriptors (EMFILE, or ENFILE for
 * the whole system): others in flight close theirs soon. `release`, called when it starts
 * waiting, gives up what the caller holds that can wait (callers holding one descriptor while
 * waiting for the next would otherwise hold them all). Past DESCRIPTOR_WAIT_MS it fails with
 * the same code and a message saying what to raise.
 */
export async function openWaitingForDescriptor(
  path: string,
  flags: string,
  release: () => void = () => undefined,
): Promise<FileHandle> {
  const deadlineMs = Date.now() + DESCRIPTOR_WAIT_MS;
  for (let delayMs = 2; ; delayMs = Math.min(delayMs * 2, 100)) {
    try {
      return await open(path, flags);
    } catch (error) {
      if (!isOutOfDescriptors(error)) throw error;
      release();
      if (Date.now() >= deadlineMs) {
        const code = (error as NodeJS.ErrnoException).code;
        throw Object.assign(
          new Error(
            `out of file descriptors (${code}) opening ${path} for ${DESCRIPTOR_WAIT_MS / 1000} s: raise ` +
              `the process's limit (ulimit -n, systemd LimitNOFILE=)`,
            { cause: error },
          ),
          { code },
        );
      }
      // Jittered, so the callers that ran out together do not all come back at once.
      await new Promise((resolve) => setTimeout(resolve, delayMs * (0.5 + Math.random())));
    }
  }
}
