// The Store contract: one suite, run against the memory store (test/unit/store-memory.test.ts) and
// real etcd (test/ns/store-etcd.test.ts). A behaviour the memory store fakes differently from etcd shows
// up here as a failure on one side.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLostError, StoreError } from '../../src/store/errors.js';
import { MAX_TXN_OPS, type ResyncNeeded, type Store, type WatchEvent, type WatchHandlers } from '../../src/store/store.js';

export interface StoreFixture {
  store: Store;
  /** A prefix (ending in '/') that no other test uses. */
  root: string;
  /** Lets lease time pass: the memory store advances its clock, etcd really waits. */
  passTime(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Records what a watch delivers and waits for it, in real time (etcd delivers over a socket). */
export class Collector implements WatchHandlers {
  readonly batches: WatchEvent[][] = [];
  readonly resyncs: ResyncNeeded[] = [];
  get events(): WatchEvent[] { return this.batches.flat(); }
  onEvents(events: WatchEvent[]): void { this.batches.push(events); }
  onResync(info: ResyncNeeded): void { this.resyncs.push(info); }

  async until(what: string, done: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) {
        assert.fail(`timed out waiting for ${what}; got events ${JSON.stringify(this.events)} resyncs ${JSON.stringify(this.resyncs)}`);
      }
      await sleep(10);
    }
  }

  /** The events as "type key[=value]" lines, to compare whole sequences. */
  lines(root: string): string[] {
    return this.events.map((e) => `${e.type} ${e.key.slice(root.length)}${e.type === 'put' ? `=${e.value}` : ''}`);
  }
}

export function storeContract(name: string, make: () => Promise<StoreFixture>): void {
  const withStore = (fn: (f: StoreFixture) => Promise<void>) => async () => {
    const f = await make();
    try { await fn(f); } finally { await f.close(); }
  };

  describe(`Store contract: ${name}`, () => {
    test('put, get and delete; createRevision stays, modRevision moves', withStore(async ({ store, root }) => {
      const k = `${root}k`;
      assert.equal(await store.get(k), undefined);
      const r1 = await store.put(k, 'v1');
      assert.deepEqual(await store.get(k), { key: k, value: 'v1', createRevision: r1, modRevision: r1 });
      const r2 = await store.put(k, 'v2');
      assert.ok(r2 > r1);
      assert.deepEqual(await store.get(k), { key: k, value: 'v2', createRevision: r1, modRevision: r2 });
      assert.equal(await store.delete(k), true);
      assert.equal(await store.get(k), undefined);
      assert.equal(await store.delete(k), false, 'deleting a missing key reports false');
    }));

    test('list returns the keys under a prefix, sorted, and not its siblings', withStore(async ({ store, root }) => {
      for (const k of ['a/2', 'a/1', 'a/sub/x', 'ab/1', 'a', 'b/1']) await store.put(`${root}${k}`, k);
      const last = await store.put(`${root}a/3`, 'a/3');
      const l = await store.list(`${root}a/`);
      assert.deepEqual(l.items.map((kv) => kv.key.slice(root.length)), ['a/1', 'a/2', 'a/3', 'a/sub/x']);
      assert.deepEqual(l.items.map((kv) => kv.value), ['a/1', 'a/2', 'a/3', 'a/sub/x']);
      assert.ok(l.revision >= last, 'the listing is a snapshot at or after the last write');
      assert.deepEqual((await store.list(`${root}none/`)).items, []);
      await assert.rejects(store.list(`${root}a`), (e: Error) => e instanceof StoreError && e.message.includes(`"${root}a"`));
      await assert.rejects(store.put(`${root}a/`, 'x'), (e: Error) => e instanceof StoreError && e.message.includes(`"${root}a/"`));
    }));

    test('revisions increase with every write and only with writes', withStore(async ({ store, root }) => {
      const revs: number[] = [];
      for (let i = 0; i < 5; i++) revs.push(await store.put(`${root}k${i % 2}`, String(i)));
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i] > revs[i - 1], `revisions ${revs.join(',')} must increase`);
      const before = (await store.list(root)).revision;
      assert.equal(await store.create(`${root}k0`, 'again'), false);
      assert.equal(await store.update(`${root}k0`, 'stale', 1), false);
      assert.equal(await store.delete(`${root}missing`), false);
      await store.get(`${root}k0`);
      assert.equal((await store.list(root)).revision, before, 'failed writes and reads do not make a revision');
    }));

    test('create writes only when the key is absent', withStore(async ({ store, root }) => {
      const k = `${root}owner`;
      assert.equal(await store.create(k, 'first'), true);
      assert.equal(await store.create(k, 'second'), false);
      assert.equal((await store.get(k))?.value, 'first');
      await store.delete(k);
      assert.equal(await store.create(k, 'third'), true, 'absent again after a delete');
    }));

    test('update and deleteIf with a stale modRevision fail and change nothing', withStore(async ({ store, root }) => {
      const k = `${root}cas`;
      const r1 = await store.put(k, 'v1');
      assert.equal(await store.update(k, 'v2', r1), true);
      const cur = (await store.get(k))!;
      assert.equal(cur.value, 'v2');
      assert.equal(await store.update(k, 'v3', r1), false, 'r1 is stale now');
      assert.equal(await store.deleteIf(k, r1), false);
      assert.deepEqual(await store.get(k), cur, 'nothing changed');
      assert.equal(await store.update(`${root}missing`, 'x', r1), false, 'update never creates');
      assert.equal(await store.deleteIf(k, cur.modRevision), true);
      assert.equal(await store.get(k), undefined);
    }));

    test('commit with every condition met writes all ops in one revision', withStore(async ({ store, root }) => {
      const ra = await store.put(`${root}tx/a`, 'a1');
      const rb = await store.put(`${root}tx/b`, 'b1');
      const before = (await store.list(root)).revision;
      assert.equal(await store.commit([
        { op: 'create', key: `${root}tx/c`, value: 'c1' },
        { op: 'update', key: `${root}tx/a`, value: 'a2', expectModRevision: ra },
        { op: 'delete', key: `${root}tx/b`, expectModRevision: rb },
        { op: 'put', key: `${root}tx/d`, value: 'd1' },
      ]), true);
      const l = await store.list(`${root}tx/`);
      assert.deepEqual(l.items.map((kv) => `${kv.key.slice(root.length)}=${kv.value}`), ['tx/a=a2', 'tx/c=c1', 'tx/d=d1']);
      assert.deepEqual(l.items.map((kv) => kv.modRevision), [before + 1, before + 1, before + 1], 'one revision for the whole transaction');
      assert.equal(l.revision, before + 1);
      assert.equal(l.items[0].createRevision, ra, 'an updated key keeps its createRevision');
    }));

    test('commit with one condition failing writes nothing and reports false', withStore(async ({ store, root }) => {
      const ra = await store.put(`${root}tf/a`, 'a1');
      await store.put(`${root}tf/a`, 'a2');
      const rb = await store.put(`${root}tf/b`, 'b1');
      const snapshot = await store.list(`${root}tf/`);
      const fresh = { op: 'create', key: `${root}tf/new`, value: 'n' } as const;
      for (const failing of [
        { op: 'update', key: `${root}tf/a`, value: 'stale', expectModRevision: ra },
        { op: 'delete', key: `${root}tf/a`, expectModRevision: ra },
        { op: 'create', key: `${root}tf/b`, value: 'exists' },
        { op: 'update', key: `${root}tf/missing`, value: 'x', expectModRevision: rb },
      ] as const) {
        assert.equal(await store.commit([fresh, { op: 'put', key: `${root}tf/p`, value: 'p' }, failing]), false, JSON.stringify(failing));
        assert.deepEqual(await store.list(`${root}tf/`), snapshot, `nothing written when ${JSON.stringify(failing)} fails`);
      }
      assert.equal(await store.commit([]), true, 'an empty transaction succeeds');
      assert.equal((await store.list(root)).revision, snapshot.revision, 'and makes no revision');
      await assert.rejects(store.commit([{ op: 'put', key: `${root}tf/x`, value: '1' }, { op: 'delete', key: `${root}tf/x`, expectModRevision: 1 }]),
        (e: Error) => e instanceof StoreError && e.message.includes(`"${root}tf/x" twice`));
    }));

    test('a transaction holds at most MAX_TXN_OPS (128, etcd\'s default) ops: one more is refused and writes nothing', withStore(async ({ store, root }) => {
      const ops = (n: number, dir: string) => Array.from({ length: n }, (_, i) => ({ op: 'create', key: `${root}${dir}/${i}`, value: String(i) }) as const);
      assert.equal(await store.commit(ops(MAX_TXN_OPS, 'max')), true);
      assert.equal((await store.list(`${root}max/`)).items.length, MAX_TXN_OPS);
      await assert.rejects(store.commit(ops(MAX_TXN_OPS + 1, 'over')),
        (e: Error) => e instanceof StoreError && e.message.includes(`${MAX_TXN_OPS + 1} ops exceeds etcd's limit of ${MAX_TXN_OPS}`));
      assert.deepEqual((await store.list(`${root}over/`)).items, []);
    }));

    test('a watch sees all events of a transaction in one onEvents call, in op order', withStore(async ({ store, root }) => {
      const rb = await store.put(`${root}tw/b`, 'b1');
      const c = new Collector();
      const w = await store.watch(`${root}tw/`, 0, c);
      assert.equal(await store.commit([
        { op: 'put', key: `${root}tw/c`, value: 'c1' },
        { op: 'delete', key: `${root}tw/b`, expectModRevision: rb },
        { op: 'create', key: `${root}tw/a`, value: 'a1' },
        { op: 'put', key: `${root}other/x`, value: 'not watched' },
      ]), true);
      await c.until('3 events', () => c.events.length >= 3);
      assert.equal(c.batches.length, 1, `one batch, got ${JSON.stringify(c.batches)}`);
      assert.deepEqual(c.lines(root), ['put tw/c=c1', 'delete tw/b', 'put tw/a=a1']);
      assert.equal(new Set(c.events.map((e) => e.modRevision)).size, 1);
      await w.cancel();
    }));

    test('watch from a revision replays history, then live events, in order', withStore(async ({ store, root }) => {
      const from = await store.put(`${root}w/a`, '1');
      await store.put(`${root}w/a`, '2');
      await store.put(`${root}w/b`, '1');
      await store.delete(`${root}w/a`);
      const c = new Collector();
      const w = await store.watch(`${root}w/`, from, c);
      await store.put(`${root}w/c`, 'live');
      await store.put(`${root}w/b`, '2');
      await c.until('6 events', () => c.events.length >= 6);
      assert.deepEqual(c.lines(root), ['put w/a=1', 'put w/a=2', 'put w/b=1', 'delete w/a', 'put w/c=live', 'put w/b=2']);
      const revs = c.events.map((e) => e.modRevision);
      assert.equal(revs[0], from);
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i] > revs[i - 1], `event revisions ${revs.join(',')} increase`);
      assert.deepEqual(c.resyncs, []);
      await w.cancel();
    }));

    test('list then watch from its revision + 1 misses nothing and repeats nothing', withStore(async ({ store, root }) => {
      await store.put(`${root}lw/old`, 'x');
      const l = await store.list(`${root}lw/`);
      await store.put(`${root}lw/new`, 'y');
      const c = new Collector();
      const w = await store.watch(`${root}lw/`, l.revision + 1, c);
      await store.delete(`${root}lw/old`);
      await c.until('2 events', () => c.events.length >= 2);
      assert.deepEqual(c.lines(root), ['put lw/new=y', 'delete lw/old']);
      await w.cancel();
    }));

    test('a watch sees its prefix only, and nothing after cancel', withStore(async ({ store, root }) => {
      const c = new Collector();
      const w = await store.watch(`${root}p/a/`, 0, c);
      await store.put(`${root}p/ab/x`, 'sibling');
      await store.put(`${root}p/b/x`, 'other');
      await store.put(`${root}p/a`, 'parent key');
      await store.put(`${root}p/a/x`, 'mine');
      await c.until('the event under p/a/', () => c.events.length >= 1);
      assert.deepEqual(c.lines(root), ['put p/a/x=mine'], 'events are ordered, so earlier non-matching ones would be here');
      await w.cancel();
      const probe = new Collector();
      const w2 = await store.watch(`${root}p/a/`, 0, probe);
      await store.put(`${root}p/a/y`, 'after cancel');
      await probe.until('the probe sees the write', () => probe.events.length >= 1);
      await sleep(50);
      assert.deepEqual(c.lines(root), ['put p/a/x=mine'], 'a cancelled watch delivers nothing');
      await w2.cancel();
    }));

    test('a watch needing compacted history gets resync-needed and no events', withStore(async ({ store, root }) => {
      const from = await store.put(`${root}cmp/k`, '1');
      await store.put(`${root}cmp/k`, '2');
      const at = await store.put(`${root}cmp/k`, '3');
      await store.compact(at);
      const c = new Collector();
      const w = await store.watch(`${root}cmp/`, from, c);
      await c.until('resync', () => c.resyncs.length === 1);
      assert.equal(c.resyncs[0].reason, 'compacted');
      assert.equal(c.resyncs[0].prefix, `${root}cmp/`);
      assert.ok(c.resyncs[0].compactRevision! >= at, `compactRevision ${c.resyncs[0].compactRevision} >= ${at}`);
      assert.deepEqual(c.events, []);
      await w.cancel();
      // The resync itself: a fresh listing, and a watch from its revision + 1 works.
      const l = await store.list(`${root}cmp/`);
      assert.deepEqual(l.items.map((kv) => kv.value), ['3']);
      const c2 = new Collector();
      const w2 = await store.watch(`${root}cmp/`, l.revision + 1, c2);
      await store.put(`${root}cmp/k`, '4');
      await c2.until('the next write', () => c2.events.length === 1);
      assert.deepEqual(c2.resyncs, []);
      await w2.cancel();
    }));

    test('revoking a lease deletes its keys, and watchers see the deletes', withStore(async ({ store, root }) => {
      const lease = await store.grantLease(5);
      await store.put(`${root}l/a`, 'leased', { lease });
      await store.create(`${root}l/b`, 'leased too', { lease: lease.id });
      await store.put(`${root}l/keep`, 'no lease');
      assert.equal((await store.get(`${root}l/a`))?.lease, lease.id);
      const c = new Collector();
      const w = await store.watch(`${root}l/`, 0, c);
      await lease.revoke();
      await c.until('two deletes', () => c.events.length >= 2);
      assert.deepEqual(c.lines(root), ['delete l/a', 'delete l/b']);
      assert.equal(c.events[0].modRevision, c.events[1].modRevision, 'one revision for the whole lease');
      assert.deepEqual((await store.list(`${root}l/`)).items.map((kv) => kv.key.slice(root.length)), ['l/keep']);
      await assert.rejects(lease.keepAlive(), LeaseLostError);
      await lease.revoke(); // already gone: not an error
      await assert.rejects(store.put(`${root}l/c`, 'x', { lease }), (e: Error) => e instanceof StoreError && e.message.includes(`"${root}l/c"`));
      await w.cancel();
    }));

    test('a lease that is not kept alive expires; its keys go and watchers see it', withStore(async ({ store, root, passTime }) => {
      const lease = await store.grantLease(1);
      assert.ok(lease.ttlSeconds >= 1);
      await store.put(`${root}e/a`, 'leased', { lease });
      const c = new Collector();
      const w = await store.watch(`${root}e/`, 0, c);
      await passTime(lease.ttlSeconds * 500);
      assert.ok(await store.get(`${root}e/a`), 'still there at half the TTL');
      await passTime(lease.ttlSeconds * 500);
      // etcd's lessor looks for expired leases every 500 ms and deletes through raft: allow for that.
      await c.until('the delete', () => c.events.length >= 1, 3000);
      assert.deepEqual(c.lines(root), ['delete e/a']);
      assert.equal(await store.get(`${root}e/a`), undefined);
      await assert.rejects(lease.keepAlive(), LeaseLostError);
      await w.cancel();
    }));

    test('keepAlive keeps a lease and its keys past its TTL', withStore(async ({ store, root, passTime }) => {
      const lease = await store.grantLease(1);
      await store.put(`${root}ka/a`, 'leased', { lease });
      for (let i = 0; i < 3; i++) {
        await passTime(lease.ttlSeconds * 600);
        await lease.keepAlive();
      }
      assert.equal((await store.get(`${root}ka/a`))?.value, 'leased', 'alive after 1.8 TTLs');
      await lease.revoke();
      assert.equal(await store.get(`${root}ka/a`), undefined);
    }));
  });
}
