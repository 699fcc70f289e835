// What grew between two V8 heap snapshots of one process, by constructor name: the step after
// a soak run shows a heap on a rising line. Take the snapshots with the soak's mount started
// under NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2 (run.sh --heap-snapshots does), then:
//
//   node scripts/soak/heap-diff.mjs EARLY.heapsnapshot LATE.heapsnapshot [TOP]
//
// Prints the TOP (default 25) names by growth of self size, with the change in object count.
import { readFileSync } from 'node:fs';

function summarize(path) {
  const snapshot = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const byName = new Map();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]];
    const name = type === 'object' || type === 'closure' ? snapshot.strings[nodes[i + nameAt]] : `(${type})`;
    const entry = byName.get(name) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[i + sizeAt];
    byName.set(name, entry);
  }
  return byName;
}

const [early, late, top = '25'] = process.argv.slice(2);
if (!early || !late) {
  console.error('usage: node scripts/soak/heap-diff.mjs EARLY.heapsnapshot LATE.heapsnapshot [TOP]');
  process.exit(2);
}
const before = summarize(early);
const after = summarize(late);
const rows = [];
for (const [name, entry] of after) {
  const old = before.get(name) ?? { count: 0, bytes: 0 };
  rows.push({ name, bytes: entry.bytes - old.bytes, count: entry.count - old.count, total: entry.bytes });
}
rows.sort((a, b) => b.bytes - a.bytes);
console.log('growth bytes\tgrowth count\tbytes now\tname');
for (const row of rows.slice(0, Number(top))) {
  console.log(`${row.bytes}\t${row.count}\t${row.total}\t${row.name.slice(0, 100)}`);
}
