/**
 * One-dimensional arrays in PostgreSQL's binary format (array_send / array_recv), for the array
 * parameters of a commit group's one call (apply.ts). node-postgres sends a Buffer parameter in
 * binary format; the statement's casts (`$2::bigint[]`) tell PostgreSQL the type. As text, every
 * element was formatted and escaped here and parsed again by `array_in` there, a large part of
 * both sides' work per group.
 *
 * Layout: dimensions (1, or 0 for an empty array), whether any element is NULL, the element
 * type's oid, then per dimension its length and lower bound (1), then each element as its byte
 * length (-1 for NULL) and its bytes, all integers big-endian.
 */

const INT4_OID = 23;
const INT8_OID = 20;
const TEXT_OID = 25;
const BYTEA_OID = 17;
const HEADER_BYTES = 20;
const EMPTY_HEADER_BYTES = 12;
const TWO_TO_32 = 2 ** 32;

function header(count: number, elementOid: number, hasNull: boolean, totalBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(totalBytes);
  buf.writeInt32BE(count === 0 ? 0 : 1, 0);
  buf.writeInt32BE(hasNull ? 1 : 0, 4);
  buf.writeInt32BE(elementOid, 8);
  if (count > 0) {
    buf.writeInt32BE(count, 12);
    buf.writeInt32BE(1, 16);
  }
  return buf;
}

const headerBytes = (count: number): number => (count === 0 ? EMPTY_HEADER_BYTES : HEADER_BYTES);

/** An int[] of 32-bit integers. */
export function int4Array(values: readonly number[]): Buffer {
  const buf = header(values.length, INT4_OID, false, headerBytes(values.length) + values.length * 8);
  let at = headerBytes(values.length);
  for (const value of values) {
    buf.writeInt32BE(4, at);
    buf.writeInt32BE(value, at + 4);
    at += 8;
  }
  return buf;
}

/** A bigint[] of safe integers (the caller checked them: encodeBatch). */
export function int8Array(values: readonly number[]): Buffer {
  const buf = header(values.length, INT8_OID, false, headerBytes(values.length) + values.length * 12);
  let at = headerBytes(values.length);
  for (const value of values) {
    // Two 32-bit halves: floor keeps negative values right (two's complement across the halves).
    const high = Math.floor(value / TWO_TO_32);
    buf.writeInt32BE(8, at);
    buf.writeInt32BE(high, at + 4);
    buf.writeUInt32BE(value - high * TWO_TO_32, at + 8);
    at += 12;
  }
  return buf;
}

/** A text[] whose elements may be NULL. */
export function textArray(values: readonly (string | null)[]): Buffer {
  let total = headerBytes(values.length);
  let hasNull = false;
  for (const value of values) {
    total += 4;
    if (value === null) hasNull = true;
    else total += Buffer.byteLength(value);
  }
  const buf = header(values.length, TEXT_OID, hasNull, total);
  let at = headerBytes(values.length);
  for (const value of values) {
    if (value === null) {
      buf.writeInt32BE(-1, at);
      at += 4;
      continue;
    }
    const length = buf.write(value, at + 4);
    buf.writeInt32BE(length, at);
    at += 4 + length;
  }
  return buf;
}

/** A bytea[]. */
export function byteaArray(values: readonly Buffer[]): Buffer {
  let total = headerBytes(values.length);
  for (const value of values) total += 4 + value.length;
  const buf = header(values.length, BYTEA_OID, false, total);
  let at = headerBytes(values.length);
  for (const value of values) {
    buf.writeInt32BE(value.length, at);
    value.copy(buf, at + 4);
    at += 4 + value.length;
  }
  return buf;
}
