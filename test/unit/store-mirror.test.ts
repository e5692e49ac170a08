// The Mirror keeps a current copy of a prefix through list, watch and resync, and reports each change once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { ManualClock } from '../../src/store/clock.js';
import { Mirror, jsonDecode, type MirrorChange } from '../../src/store/mirror.js';
import { SyncRunner } from '../../src/store/runner.js';

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 200; i++) { if (cond()) return; await new Promise((r) => setTimeout(r, 5)); }
  assert.fail(`timed out waiting for ${what}`);
};

test('mirror: initial listing, then puts and deletes as changes with before/after', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  await store.put('/o/a', '{"v":1}');
  await store.put('/other/x', '{}');
  const m = new Mirror<{ v: number }>(store, '/o/', jsonDecode);
  const seen: MirrorChange<{ v: number }>[] = [];
  m.onChange((c) => seen.push(...c));
  await m.start();
  assert.deepEqual(m.keys(), ['/o/a']);
  assert.deepEqual(seen, [{ key: '/o/a', before: undefined, after: { v: 1 } }]);
  await store.put('/o/a', '{"v":2}');
  await store.put('/o/b', '{"v":3}');
  await store.delete('/o/a');
  await until(() => seen.length === 4, 'three changes');
  assert.deepEqual(seen.slice(1), [
    { key: '/o/a', before: { v: 1 }, after: { v: 2 } },
    { key: '/o/b', before: undefined, after: { v: 3 } },
    { key: '/o/a', before: { v: 2 } },
  ]);
  assert.deepEqual(m.values(), [{ v: 3 }]);
  await m.stop();
  await store.close();
});

test('mirror: a watch that fell behind compaction relists and reports only the difference', async () => {
  const store = new MemoryStore({ clock: new ManualClock(), historyLimit: 2 });
  await store.put('/o/a', '{"v":1}');
  await store.put('/o/b', '{"v":1}');
  const m = new Mirror<{ v: number }>(store, '/o/', jsonDecode);
  await m.start();
  const seen: MirrorChange<{ v: number }>[] = [];
  m.onChange((c) => seen.push(...c));
  const rev = m.revision;
  await store.delete('/o/a');
  await store.put('/o/c', '{"v":5}');
  await store.compact(rev + 2);
  await until(() => m.keys().join() === '/o/b,/o/c', 'mirror caught up');
  assert.deepEqual(m.get('/o/c'), { v: 5 });
  assert.equal(seen.filter((c) => c.key === '/o/a' && !c.after).length, 1, 'the delete reported once');
  await m.stop();
  await store.close();
});

test('runner: many pokes make few syncs; a failing sync is retried without a poke', async () => {
  let calls = 0;
  let fail = true;
  const r = new SyncRunner(async () => { calls++; if (fail) { fail = false; throw new Error('boom'); } }, { minIntervalMs: 20, retryMs: 30, periodMs: 0 });
  r.start();
  for (let i = 0; i < 50; i++) r.poke();
  await until(() => calls >= 2 && r.lastError === undefined, 'retry');
  await r.idle();
  assert.ok(calls <= 3, `calls ${calls}`);
  r.stop();
});
