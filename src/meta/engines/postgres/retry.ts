import { Errno, FsError } from '../../../common/index.js';

/**
 * Raised by strata_expect (migration 3) when a row a transaction took from the server's cache
 * changed meanwhile, and by the engine when a transaction that used cached values fails with a
 * POSIX error (the error may come from a stale value). The next attempt reads PostgreSQL.
 */
export const STALE_CACHE_SQLSTATE = 'SR001';

/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRYABLE_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  STALE_CACHE_SQLSTATE, // a value taken from this server's cache had changed (row-cache.ts)
]);

export interface RetryPolicy {
  /** Attempts in total, the first one included. */
  maxAttempts: number;
  /** Backoff before the second attempt; doubles each time, with full jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 30, baseDelayMs: 1, maxDelayMs: 100 };

/** The SQLSTATE of an error thrown by node-postgres, if it has one. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string' && code.length === 5) return code;
  }
  return undefined;
}

/** Connection trouble (server gone, network): the operation's outcome may be unknown. */
export function isConnectionError(error: unknown): boolean {
  const state = sqlState(error);
  if (state !== undefined)
    return state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03';
  return error instanceof Error && /Connection terminated|ECONNREFUSED|ECONNRESET|EPIPE/.test(error.message);
}

export function isRetryable(error: unknown): boolean {
  const state = sqlState(error);
  if (state === undefined) return false;
  if (RETRYABLE_SQLSTATES.has(state)) return true;
  // unique_violation on a directory entry: another server inserted the same name after this
  // transaction saw it absent. Running again sees the entry and answers EEXIST (or replaces it).
  return state === '23505' && (error as { constraint?: unknown }).constraint === 'dentry_pkey';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it succeeds or fails with something other than a serialization
 * failure or deadlock. FsErrors (POSIX outcomes such as EEXIST) are never retried: they are
 * answers, not accidents. `onRetry` lets callers count retries for metrics and tests.
 */
export async function withRetry<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (error: unknown, attemptNumber: number) => void,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (error instanceof FsError || !isRetryable(error) || n >= policy.maxAttempts) {
        if (!(error instanceof FsError) && isRetryable(error)) {
          throw new FsError(
            Errno.EAGAIN,
            `PostgreSQL transaction still conflicting after ${n} attempts (SQLSTATE ${sqlState(error)}); ` +
              'the directory is very contended, retry later',
            { cause: error },
          );
        }
        throw error;
      }
      onRetry?.(error, n);
      // A stale cached read is no conflict with anyone: the next attempt reads PostgreSQL at once.
      if (sqlState(error) === STALE_CACHE_SQLSTATE) continue;
      const capMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
      await sleep(Math.random() * capMs);
    }
  }
}
