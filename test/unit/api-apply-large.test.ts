// apply and delete of more objects than one etcd transaction holds (128): they work at any size on
// the memory store, which refuses a bigger transaction as etcd does, and a refusal still writes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { MAX_TXN_OPS, type TxnOp } from '../../src/store/store.js';
import { commitChunked } from '../../src/store/chunked.js';
import { applyObjects, ApplyError, deleteObjects, listObjects } from '../../src/api/apply.js';
import { parseManifests } from '../../src/api/manifest.js';
import { CLUSTER_IP_PREFIX, kindPrefix, objectKey } from '../../src/api/keys.js';
import type { Namespace, Pod } from '../../src/api/types.js';

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: big }\n';
const POD = (i: number) => `apiVersion: v1\nkind: Pod\nmetadata: { name: p${i}, namespace: big }\nspec: { containers: [{ name: c, command: [sleep, infinity] }] }\n`;
const SVC = (i: number) => `apiVersion: v1\nkind: Service\nmetadata: { name: s${i}, namespace: big }\nspec: { selector: { app: x }, ports: [{ port: 80 }] }\n`;
const manifest = (docs: string[]) => parseManifests(docs.join('---\n'), 'big.yaml');
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function cluster(): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (const ns of ['default', 'kube-system']) {
    await store.put(objectKey('Namespace', ns), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } }));
  }
  return store;
}

test('apply -f and delete -f of 300 objects (and 50 Services with their ClusterIPs) work past the 128-op transaction limit', async () => {
  const store = await cluster();
  const docs = [NS, ...range(250).map(POD), ...range(50).map(SVC)];
  const applied = await applyObjects(store, manifest(docs));
  assert.equal(applied.filter((r) => r.action === 'created').length, 301);
  assert.equal((await listObjects(store, 'Pod', 'big')).length, 250);
  assert.equal((await store.list(kindPrefix('Service', 'big'))).items.length, 50);
  assert.equal((await store.list(CLUSTER_IP_PREFIX)).items.length, 50, 'every ClusterIP is held by its key');
  const deleted = await deleteObjects(store, manifest(docs.slice(1)));
  assert.equal(deleted.filter((r) => r.action === 'deleted').length, 300);
  assert.deepEqual(await listObjects(store, 'Pod', 'big'), []);
  assert.deepEqual(await listObjects(store, 'Service', 'big'), []);
  await store.close();
});

test('a file of 300 objects whose last one is bad stores nothing', async () => {
  const store = await cluster();
  const rev = store.revision;
  const bad = 'apiVersion: v1\nkind: Pod\nmetadata: { name: bad, namespace: nowhere }\nspec: { containers: [{ name: c }] }\n';
  await assert.rejects(applyObjects(store, manifest([NS, ...range(298).map(POD), bad])),
    (e: Error) => e instanceof ApplyError && e.message.includes('namespace "nowhere" not found'));
  assert.equal(store.revision, rev);
  assert.deepEqual(await listObjects(store, 'Pod'), []);
  await store.close();
});

test('deleting a namespace takes its 300 pods: bound ones stay terminating, the namespace Terminating', async () => {
  const store = await cluster();
  await applyObjects(store, manifest([NS, ...range(300).map(POD)]));
  // Half of them on a node: those terminate gracefully; the unbound go at once.
  for (const p of await listObjects(store, 'Pod', 'big')) {
    if (Number(p.metadata.name.slice(1)) % 2 === 0) await store.put(objectKey('Pod', p.metadata.name, 'big'), JSON.stringify({ ...p, spec: { ...(p as Pod).spec, nodeName: 'n1' } }));
  }
  const r = await deleteObjects(store, manifest([NS]));
  assert.deepEqual(r.map((x) => x.line), ['namespace "big" deleted']);
  const left = (await listObjects(store, 'Pod', 'big')) as Pod[];
  assert.equal(left.length, 150);
  assert.ok(left.every((p) => p.metadata.deletionTimestamp !== undefined));
  const ns = JSON.parse((await store.get(objectKey('Namespace', 'big')))!.value) as Namespace;
  assert.equal(ns.status?.phase, 'Terminating');
  await store.close();
});

test('commitChunked: a later chunk whose condition fails undoes the earlier chunks, and leaves a newer write alone', async () => {
  const store = new MemoryStore();
  const stale = await store.put('/k/guarded', 'old');
  await store.put('/k/guarded', 'newer');
  const kept = await store.put('/k/existing', 'before');
  const ops: TxnOp[] = [
    { op: 'update', key: '/k/existing', value: 'changed', expectModRevision: kept },
    ...range(2 * MAX_TXN_OPS).map((i) => ({ op: 'create' as const, key: `/k/new/${i}`, value: 'x' })),
    { op: 'update', key: '/k/guarded', value: 'lost', expectModRevision: stale },
  ];
  const before = await store.list('/k/');
  assert.equal(await commitChunked(store, ops), false);
  assert.deepEqual((await store.list('/k/')).items.map((kv) => [kv.key, kv.value]), before.items.map((kv) => [kv.key, kv.value]));

  // An undo never overwrites what someone else wrote after the chunk: it only restores keys still as the chunk left them.
  const other = new MemoryStore();
  const r = await other.put('/k/a', '1');
  const commit = other.commit.bind(other);
  let chunks = 0;
  other.commit = async (o) => {
    const ok = await commit(o);
    if (++chunks === 1) await other.put('/k/a', 'theirs'); // a writer between the chunks
    return ok;
  };
  const big: TxnOp[] = [{ op: 'update', key: '/k/a', value: 'mine', expectModRevision: r }, ...range(MAX_TXN_OPS).map((i) => ({ op: 'create' as const, key: `/k/b/${i}`, value: 'x' })),
    { op: 'create', key: '/k/a2', value: 'x' }];
  await other.put('/k/b/200', 'taken'); // makes the second chunk fail
  assert.equal(await commitChunked(other, [...big, { op: 'create', key: '/k/b/200', value: 'x' }]), false);
  assert.equal((await other.get('/k/a'))!.value, 'theirs');
  assert.equal((await other.list('/k/b/')).items.length, 1);
  // A key twice across chunks is refused before anything is written, as one transaction refuses it.
  const twice: TxnOp[] = [...range(MAX_TXN_OPS + 1).map((i) => ({ op: 'create' as const, key: `/k/t/${i}`, value: 'x' })), { op: 'put', key: '/k/t/0', value: 'y' }];
  await assert.rejects(commitChunked(store, twice), /writes a key twice/);
  assert.deepEqual((await store.list('/k/t/')).items, []);
  await store.close();
  await other.close();
});
