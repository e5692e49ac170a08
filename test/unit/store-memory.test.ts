// The memory store keeps the Store contract, plus what only it can show cheaply: history trimmed by
// its limit making a late watcher resync, and lease time under a manual clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/store/clock.js';
import { MemoryStore } from '../../src/store/memory.js';
import { StoreError } from '../../src/store/errors.js';
import { Collector, storeContract } from '../helpers/store-contract.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

storeContract('memory', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  return {
    store,
    root: '/t/',
    passTime: async (ms) => { clock.advance(ms); await flush(); },
    close: () => store.close(),
  };
});

test('memory: history beyond historyLimit is compacted, and a watch from before it resyncs', async () => {
  const store = new MemoryStore({ clock: new ManualClock(), historyLimit: 3 });
  const first = await store.put('/h/k', '0');
  for (let i = 1; i <= 5; i++) await store.put('/h/k', String(i));
  const late = new Collector();
  await store.watch('/h/', first, late);
  await late.until('resync', () => late.resyncs.length === 1);
  assert.equal(late.resyncs[0].reason, 'compacted');
  assert.equal(late.resyncs[0].compactRevision, store.revision - 2, 'the last 3 revisions are kept');
  const inTime = new Collector();
  await store.watch('/h/', store.revision - 2, inTime);
  await inTime.until('3 events', () => inTime.events.length === 3);
  assert.deepEqual(inTime.lines('/h/'), ['put k=3', 'put k=4', 'put k=5']);
  await store.close();
});

test('memory: a lease expires exactly at its TTL on the injected clock; keepAlive restarts it', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const lease = await store.grantLease(10);
  await store.put('/l/a', 'x', { lease });
  clock.advance(9_999);
  assert.ok(await store.get('/l/a'));
  await lease.keepAlive();
  clock.advance(9_999);
  assert.ok(await store.get('/l/a'), 'keepAlive restarted the 10 s');
  clock.advance(1);
  assert.equal(await store.get('/l/a'), undefined);
  await store.close();
});

test('memory: re-putting a key without its lease detaches it, as etcd does', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  const lease = await store.grantLease(10);
  await store.put('/d/a', 'x', { lease });
  await store.put('/d/a', 'y');
  assert.equal((await store.get('/d/a'))?.lease, undefined);
  await lease.revoke();
  assert.equal((await store.get('/d/a'))?.value, 'y');
  await store.close();
});

test('memory: a watch from a future revision skips the writes before it', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  const c = new Collector();
  await store.watch('/f/', store.revision + 2, c);
  await store.put('/f/a', '1');
  await store.put('/f/a', '2');
  await c.until('one event', () => c.events.length === 1);
  assert.deepEqual(c.lines('/f/'), ['put a=2']);
  await store.close();
});

test('memory: a closed store refuses work; compacting the future is an error', async () => {
  const store = new MemoryStore();
  await assert.rejects(store.compact(store.revision + 1), /cannot compact at revision/);
  await store.close();
  await assert.rejects(store.get('/x'), StoreError);
});

test('ManualClock fires timers in deadline order with now() at each deadline', () => {
  const clock = new ManualClock(100);
  const seen: string[] = [];
  clock.setTimer(50, () => seen.push(`b@${clock.now()}`));
  clock.setTimer(10, () => { seen.push(`a@${clock.now()}`); clock.setTimer(5, () => seen.push(`c@${clock.now()}`)); });
  const t = clock.setTimer(20, () => seen.push('cancelled'));
  t.cancel();
  clock.advance(100);
  assert.deepEqual(seen, ['a@110', 'c@115', 'b@150']);
  assert.equal(clock.now(), 200);
});
