/**
 * Argument parsers for calls arriving over the wire. Each returns the value to pass to the
 * service (objects rebuilt with only their known fields, so nothing unexpected reaches the
 * engine) or INVALID. They run on every call: keep them plain.
 */
export const INVALID = Symbol('invalid');
export type Parsed<T> = T | typeof INVALID;

export interface Arg<T> {
  /** What a valid value is, for the error message ("an inode number (integer >= 1)"). */
  readonly expected: string;
  parse(value: unknown): Parsed<T>;
}

type Fields = Record<string, unknown>;
const isObject = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);

const arg = <T>(expected: string, parse: (value: unknown) => Parsed<T>): Arg<T> => ({ expected, parse });

export const u32 = arg('an integer in [0, 2^32)', (v) =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff ? (v as number) : INVALID,
);
export const count = arg('an integer >= 0', (v) =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : INVALID,
);
export const int = arg('an integer', (v) => (Number.isSafeInteger(v) ? (v as number) : INVALID));
export const positive = arg('an integer >= 1', (v) =>
  Number.isSafeInteger(v) && (v as number) >= 1 ? (v as number) : INVALID,
);
export const bool = arg('a boolean', (v) => (typeof v === 'boolean' ? v : INVALID));
export const string = arg('a string', (v) => (typeof v === 'string' ? v : INVALID));
export const bytes = arg('binary data', (v) => (Buffer.isBuffer(v) ? v : INVALID));

export function optional<T>(inner: Arg<T>): Arg<T | undefined> {
  return arg(`${inner.expected} or nothing`, (v) =>
    v === undefined || v === null ? undefined : inner.parse(v),
  );
}

export function arrayOf<T>(inner: Arg<T>, maxItems: number): Arg<T[]> {
  return arg(`an array of at most ${maxItems} × ${inner.expected}`, (v) => {
    if (!Array.isArray(v) || v.length > maxItems) return INVALID;
    const out: T[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const item = inner.parse(v[i]);
      if (item === INVALID) return INVALID;
      out[i] = item;
    }
    return out;
  });
}

/** An object with exactly the listed fields parsed (missing optional ones left out). */
export function record<T>(expected: string, fields: { [K in keyof T]-?: Arg<T[K]> }): Arg<T> {
  const entries = Object.entries(fields) as [string, Arg<unknown>][];
  return arg(expected, (v) => {
    if (!isObject(v)) return INVALID;
    const out: Fields = {};
    for (const [name, field] of entries) {
      const value = field.parse(v[name]);
      if (value === INVALID) return INVALID;
      if (value !== undefined) out[name] = value;
    }
    return out as T;
  });
}

export function oneOf<T extends string>(...values: T[]): Arg<T> {
  return arg(values.map((value) => `"${value}"`).join(' or '), (v) =>
    values.includes(v as T) ? (v as T) : INVALID,
  );
}

/** How a received value looks, for error messages (never the value itself: it may be huge). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (Buffer.isBuffer(value)) return `${value.length} bytes of binary data`;
  if (typeof value === 'number')
    return Number.isInteger(value) ? `the integer ${value}` : `the number ${value}`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object'
    ? `an object (${value.constructor?.name ?? 'no prototype'})`
    : typeof value;
}
