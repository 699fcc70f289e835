import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Ino } from '../../src/common/index.js';
import { FuseRequest, InFlight } from '../../src/fuse/request.js';

const request = (uniqueId: number) => new FuseRequest(Buffer.alloc(0), 0, 0, uniqueId, 1 as Ino, 0, 0, 0);

describe('the in-flight request list', () => {
  test('adds, removes in any order and finds by id exactly like a map would', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(40)), { maxLength: 200 }), (steps) => {
        const list = new InFlight();
        const model = new Map<number, FuseRequest>();
        let next = 1;
        for (const [add, pick] of steps) {
          if (add || model.size === 0) {
            const req = request(next++);
            list.add(req);
            model.set(req.uniqueId, req);
          } else {
            const victim = [...model.values()][pick % model.size];
            list.remove(victim);
            model.delete(victim.uniqueId);
            assert.equal(victim.slot, -1);
            assert.equal(list.find(victim.uniqueId), undefined);
          }
          assert.equal(list.size, model.size);
        }
        for (const [id, req] of model) assert.equal(list.find(id), req);
        assert.deepEqual(new Set(list.list()), new Set(model.values()));
      }),
      { seed: 0x5107 },
    );
  });

  test('removing a request twice, or one never added, changes nothing', () => {
    const list = new InFlight();
    const a = request(1);
    const b = request(2);
    list.add(a);
    list.add(b);
    list.remove(a);
    list.remove(a);
    list.remove(request(3));
    assert.equal(list.size, 1);
    assert.equal(list.find(2), b);
  });
});
