import { isUtf8 } from 'node:buffer';

/**
 * Names (file names, symlink targets, xattr names) are bytes to the kernel and strings
 * everywhere else (RPC, engines, dumps). The two map one to one:
 * - valid UTF-8 maps to the characters it spells;
 * - every byte that is not part of valid UTF-8 maps to one character U+F700 + byte, and so does
 *   each byte of a name's own characters in U+F700..U+F7FF (private use), so that no decoded
 *   name can be spelled two ways.
 * Decoding with plain UTF-8 would turn every invalid byte into U+FFFD, and two different names
 * (b"\x80", b"\x81") would become one file.
 */
const ESCAPE_BASE = 0xf700;
const ESCAPE_LAST = 0xf7ff;
const HAS_ESCAPE = /[\uf700-\uf7ff]/;

/** The name spelled by bytes [start, end) of `buf`. */
export function decodeName(buf: Buffer, start: number, end: number): string {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (buf[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', start, end);
  const bytes = buf.subarray(start, end);
  if (isUtf8(bytes)) {
    const text = bytes.toString('utf8');
    if (!HAS_ESCAPE.test(text)) return text;
  }
  return decodeEscaped(bytes);
}

function decodeEscaped(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x80) {
      out += String.fromCharCode(lead);
      i++;
      continue;
    }
    const [follow, bits, min] =
      lead >= 0xc2 && lead <= 0xdf
        ? [1, lead & 0x1f, 0x80]
        : lead >= 0xe0 && lead <= 0xef
          ? [2, lead & 0x0f, 0x800]
          : lead >= 0xf0 && lead <= 0xf4
            ? [3, lead & 0x07, 0x10000]
            : [0, 0, 0];
    let codePoint = bits;
    let valid = follow > 0 && i + follow < bytes.length;
    for (let k = 1; valid && k <= follow; k++) {
      const next = bytes[i + k];
      if ((next & 0xc0) !== 0x80) valid = false;
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    valid &&=
      codePoint >= min &&
      codePoint <= 0x10ffff &&
      !(codePoint >= 0xd800 && codePoint <= 0xdfff) &&
      !(codePoint >= ESCAPE_BASE && codePoint <= ESCAPE_LAST);
    if (valid) {
      out += String.fromCodePoint(codePoint);
      i += follow + 1;
    } else {
      out += String.fromCharCode(ESCAPE_BASE + lead);
      i++;
    }
  }
  return out;
}

/** The bytes of `name` (the inverse of decodeName). */
export function encodeName(name: string): Buffer {
  if (!HAS_ESCAPE.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let plainStart = 0;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code < ESCAPE_BASE || code > ESCAPE_LAST) continue;
    if (plainStart < i) parts.push(Buffer.from(name.slice(plainStart, i), 'utf8'));
    parts.push(Buffer.of(code - ESCAPE_BASE));
    plainStart = i + 1;
  }
  if (plainStart < name.length) parts.push(Buffer.from(name.slice(plainStart), 'utf8'));
  return Buffer.concat(parts);
}

/** How many bytes `name` is to the kernel (what NAME_MAX and PATH_MAX limit). */
export function nameByteLength(name: string): number {
  return HAS_ESCAPE.test(name) ? encodeName(name).length : Buffer.byteLength(name);
}

/** Writes the bytes of `name` into `buf` at `offset`; returns how many were written. */
export function writeName(buf: Buffer, offset: number, name: string): number {
  if (!HAS_ESCAPE.test(name)) return buf.write(name, offset, 'utf8');
  return encodeName(name).copy(buf, offset);
}
