import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { allLayouts, Fattr, Fopen, InitFlag, NotifyCode, Opcode } from '../../src/fuse/abi.js';

// The struct offsets and constants in src/fuse/abi.ts, checked against the kernel header
// on this machine by compiling a C program that prints offsetof()/sizeof() and the macros.

function compileAndRun(source: string): Map<string, number> {
  const dir = mkdtempSync('/tmp/strata-fuse-abi-');
  try {
    writeFileSync(join(dir, 'abi.c'), source);
    execFileSync('gcc', ['-o', join(dir, 'abi'), join(dir, 'abi.c')], { stdio: 'pipe' });
    const output = execFileSync(join(dir, 'abi'), { encoding: 'utf8' });
    return new Map(
      output
        .trim()
        .split('\n')
        .map((line) => {
          const [key, value] = line.split(' ');
          return [key, Number(value)];
        }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cField = (field: string) => (field.endsWith('_') ? field.slice(0, -1) : field);

test('every struct layout matches offsetof() and sizeof() from linux/fuse.h', () => {
  const lines: string[] = [];
  const expected = new Map<string, number>();
  for (const layout of allLayouts) {
    lines.push(`printf("${layout.struct}.sizeof %zu\\n", sizeof(struct ${layout.struct}));`);
    expected.set(`${layout.struct}.sizeof`, layout.size);
    for (const [field, offset] of Object.entries(layout)) {
      if (field === 'struct' || field === 'size') continue;
      const c = cField(field);
      lines.push(`printf("${layout.struct}.${c} %zu\\n", offsetof(struct ${layout.struct}, ${c}));`);
      expected.set(`${layout.struct}.${c}`, offset as number);
    }
  }
  const actual = compileAndRun(
    `#include <stddef.h>\n#include <stdio.h>\n#include <linux/fuse.h>\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`,
  );
  assert.ok(expected.size > 150, `checked only ${expected.size} offsets`);
  for (const [key, value] of expected) assert.equal(value, actual.get(key), key);
});

test('opcodes, INIT flags, setattr and open flags match the header macros', () => {
  const groups: Array<[Record<string, number>, string]> = [
    [Opcode, 'FUSE_'],
    [InitFlag, 'FUSE_'],
    [Fattr, 'FATTR_'],
    [Fopen, 'FOPEN_'],
    [NotifyCode, 'FUSE_NOTIFY_'],
  ];
  const lines: string[] = [];
  const expected = new Map<string, number>();
  for (const [table, prefix] of groups) {
    for (const [name, value] of Object.entries(table)) {
      lines.push(`printf("${prefix}${name} %lld\\n", (long long)(${prefix}${name}));`);
      expected.set(`${prefix}${name}`, value);
    }
  }
  const actual = compileAndRun(
    `#include <stdio.h>\n#include <linux/fuse.h>\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`,
  );
  for (const [key, value] of expected) assert.equal(value, actual.get(key), key);
});
