import type { ObjectStore } from './store.js';
import { openFileStore } from './backends/file.js';
import { openS3Store } from './backends/s3.js';
import { withRetry, type RetryOptions } from './wrappers/retry.js';

export interface OpenObjectStoreOptions {
  /** Retry policy for transient errors; `false` returns the bare backend (tests, benchmarks). */
  retry?: RetryOptions | false;
}

/** How one backend is opened. A backend adds exactly one entry to `backends` below. */
export interface BackendEntry {
  /** URL forms this backend accepts, shown in error messages, e.g. "file:///abs/dir". */
  forms: string[];
  open(url: string, options: OpenObjectStoreOptions): Promise<ObjectStore>;
}

/**
 * The one table of backends, keyed by URL scheme (with the colon). The rest of the code never
 * names a backend: it calls openObjectStore with whatever URL the user gave.
 */
const backends: Record<string, BackendEntry> = {
  'file:': { forms: ['file:///absolute/dir', 'file:relative/dir'], open: (url) => openFileStore(url) },
  's3:': {
    forms: ['s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=R&path_style=1'],
    open: (url) => openS3Store(url),
  },
};

function acceptedForms(): string {
  return Object.values(backends)
    .flatMap((entry) => entry.forms)
    .join(', ');
}

/** Opens the object store a URL names, wrapped in retry with backoff unless `retry: false`. */
export async function openObjectStore(
  url: string,
  options: OpenObjectStoreOptions = {},
): Promise<ObjectStore> {
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*:)/.exec(url.trim());
  if (!match) {
    throw new Error(`invalid object store URL "${url}": expected one of ${acceptedForms()}`);
  }
  const scheme = match[1].toLowerCase();
  const entry = backends[scheme];
  if (!entry) {
    throw new Error(
      `unsupported object store scheme "${scheme}" in "${url}": expected one of ${acceptedForms()}`,
    );
  }
  const store = await entry.open(url.trim(), options);
  return options.retry === false ? store : withRetry(store, options.retry ?? {});
}

/** The schemes that openObjectStore understands, for help texts. */
export function objectStoreSchemes(): string[] {
  return Object.keys(backends);
}
