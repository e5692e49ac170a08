// apply, delete and list on the memory store: kubectl's lines, all-or-nothing writes, immutable pod
// specs, namespaces that must exist, and delete cascading through a namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { applyObjects, ApplyError, deleteObjects, listObjects } from '../../src/api/apply.js';
import { parseManifests } from '../../src/api/manifest.js';
import { objectKey } from '../../src/api/keys.js';
import type { Deployment, Namespace, Pod } from '../../src/api/types.js';
import { Collector } from '../helpers/store-contract.js';

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n';
const POD = (name: string, extra = '') => `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: demo${extra} }\nspec: { containers: [{ name: c, command: [sleep, infinity] }] }\n`;
const DEP = (replicas: number) => `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, namespace: demo }\nspec:\n  replicas: ${replicas}\n  selector: { matchLabels: { app: web } }\n  template: { metadata: { labels: { app: web } }, spec: { containers: [{ name: web }] } }\n`;
const parse = (...docs: string[]) => parseManifests(docs.join('---\n'), 'test.yaml');

/** A store with the namespaces the lab makes. */
async function cluster(): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (const ns of ['default', 'kube-system']) {
    await store.put(objectKey('Namespace', ns), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } }));
  }
  return store;
}

async function read<T>(store: MemoryStore, key: string): Promise<T> {
  const kv = await store.get(key);
  assert.ok(kv, `${key} is stored`);
  return JSON.parse(kv.value) as T;
}

test('apply creates, then reports unchanged, then configured; new objects get uid, timestamp and status', async () => {
  const store = await cluster();
  const first = await applyObjects(store, parse(NS, DEP(2), POD('web')));
  assert.deepEqual(first.map((r) => r.line), ['namespace/demo created', 'deployment.apps/web created', 'pod/web created']);
  assert.deepEqual(first[2], { kind: 'Pod', name: 'web', namespace: 'demo', action: 'created', line: 'pod/web created' });
  const pod = await read<Pod>(store, objectKey('Pod', 'web', 'demo'));
  assert.match(pod.metadata.uid!, /^[0-9a-f-]{36}$/);
  assert.match(pod.metadata.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(pod.status, { phase: 'Pending' });
  assert.deepEqual((await read<Namespace>(store, objectKey('Namespace', 'demo'))).status, { phase: 'Active' });

  const rev = store.revision;
  const again = await applyObjects(store, parse(NS, DEP(2), POD('web')));
  assert.deepEqual(again.map((r) => r.line), ['namespace/demo unchanged', 'deployment.apps/web unchanged', 'pod/web unchanged']);
  assert.equal(store.revision, rev, 'nothing written');

  // What controllers write (status, a scheduled node) stays; labels and the Deployment's spec change.
  await store.put(objectKey('Pod', 'web', 'demo'), JSON.stringify({ ...pod, spec: { ...pod.spec, nodeName: 'node-1' }, status: { phase: 'Running', podIP: '10.244.1.5' } }));
  const third = await applyObjects(store, parse(NS, DEP(3), POD('web', ', labels: { app: x }')));
  assert.deepEqual(third.map((r) => r.line), ['namespace/demo unchanged', 'deployment.apps/web configured', 'pod/web configured']);
  assert.equal(store.revision, rev + 2, 'the put, then one revision for the whole apply');
  const after = await read<Pod>(store, objectKey('Pod', 'web', 'demo'));
  assert.equal(after.metadata.uid, pod.metadata.uid);
  assert.equal(after.metadata.creationTimestamp, pod.metadata.creationTimestamp);
  assert.deepEqual(after.metadata.labels, { app: 'x' });
  assert.equal(after.spec.nodeName, 'node-1');
  assert.deepEqual(after.status, { phase: 'Running', podIP: '10.244.1.5' });
  assert.equal((await read<Deployment>(store, objectKey('Deployment', 'web', 'demo'))).spec.replicas, 3);
  await store.close();
});

test('a bad second object refuses the whole apply: nothing is stored', async () => {
  const store = await cluster();
  await applyObjects(store, parse(NS, POD('web')));
  const rev = store.revision;
  const changed = POD('web').replace('sleep, infinity', 'sleep, "1"');
  await assert.rejects(applyObjects(store, parse(POD('new'), changed)),
    (e: Error) => e instanceof ApplyError && e.message === 'Pod "demo/web": spec is immutable (field spec.containers[0].command[1]); delete the pod and apply it again');
  assert.equal(store.revision, rev, 'store revision unchanged');
  assert.equal(await store.get(objectKey('Pod', 'new', 'demo')), undefined, 'the first object was not created either');
  await store.close();
});

test('a namespace must exist, or be created by the same apply', async () => {
  const store = await cluster();
  await assert.rejects(applyObjects(store, parse(POD('web'))),
    (e: Error) => e instanceof ApplyError && e.message === 'Pod "demo/web": namespace "demo" not found (create it first, or in the same apply)');
  assert.equal(store.revision, 3, 'nothing written past the two namespaces');
  const defaultPod = POD('web').replace('namespace: demo', 'namespace: default');
  assert.deepEqual((await applyObjects(store, parse(defaultPod))).map((r) => r.line), ['pod/web created']);
  // The Namespace may come after its objects in the file.
  assert.deepEqual((await applyObjects(store, parse(POD('web'), NS))).map((r) => r.line), ['pod/web created', 'namespace/demo created']);
  await store.close();
});

test('an apply is one transaction: a watcher sees all its writes in one batch', async () => {
  const store = await cluster();
  const c = new Collector();
  await store.watch('/registry/', 0, c);
  await applyObjects(store, parse(NS, DEP(1), POD('a'), POD('b')));
  await c.until('4 events', () => c.events.length >= 4);
  assert.equal(c.batches.length, 1);
  await store.close();
});

test('apply retries when the store changes under it', async () => {
  const store = await cluster();
  await applyObjects(store, parse(NS, POD('web')));
  // The first commit fails (as if a controller wrote in between); the second goes through.
  const commit = store.commit.bind(store);
  let calls = 0;
  store.commit = async (ops) => (++calls === 1 ? false : commit(ops));
  const r = await applyObjects(store, parse(NS, POD('web', ', labels: { a: b }')));
  assert.deepEqual(r.map((x) => x.line), ['namespace/demo unchanged', 'pod/web configured']);
  assert.equal(calls, 2);
  await store.close();
});

test('delete: kubectl lines, NotFound without throwing, a namespace takes its pods and deployments', async () => {
  const store = await cluster();
  await applyObjects(store, parse(NS, DEP(2), POD('a'), POD('b'), POD('keep').replace('namespace: demo', 'namespace: default')));
  // A pod the Deployment made, as the controller writes it.
  const owned: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-x1', namespace: 'demo', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }] }, spec: { containers: [{ name: 'web' }] } };
  await store.put(objectKey('Pod', 'web-x1', 'demo'), JSON.stringify(owned));
  const rev = store.revision;

  const results = await deleteObjects(store, parse(POD('a'), NS, POD('gone')));
  assert.deepEqual(results.map((r) => r.line), ['pod "a" deleted', 'namespace "demo" deleted', 'Error from server (NotFound): pods "gone" not found']);
  assert.deepEqual(results.map((r) => r.notFound), [false, false, true]);
  assert.equal(store.revision, rev + 1, 'one transaction');
  assert.deepEqual((await listObjects(store, 'Pod')).map((p) => `${p.metadata.namespace}/${p.metadata.name}`), ['default/keep']);
  assert.deepEqual(await listObjects(store, 'Deployment'), []);

  const missing = await deleteObjects(store, parse(DEP(1)));
  assert.deepEqual(missing.map((r) => r.line), ['Error from server (NotFound): deployments.apps "web" not found']);
  await store.close();
});

test('deleting a Deployment takes the pods it owns, and only those', async () => {
  const store = await cluster();
  await applyObjects(store, parse(NS, DEP(1), POD('mine-not')));
  const owned: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-x1', namespace: 'demo', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }] }, spec: { containers: [{ name: 'web' }] } };
  await store.put(objectKey('Pod', 'web-x1', 'demo'), JSON.stringify(owned));
  assert.deepEqual((await deleteObjects(store, parse(DEP(1)))).map((r) => r.line), ['deployment.apps "web" deleted']);
  assert.deepEqual((await listObjects(store, 'Pod', 'demo')).map((p) => p.metadata.name), ['mine-not']);
  await store.close();
});

test('the default and kube-system namespaces cannot be deleted', async () => {
  const store = await cluster();
  const rev = store.revision;
  await assert.rejects(deleteObjects(store, parse('apiVersion: v1\nkind: Namespace\nmetadata: { name: default }\n')),
    { message: 'Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted' });
  await assert.rejects(deleteObjects(store, parse('apiVersion: v1\nkind: Namespace\nmetadata: { name: kube-system }\n')), /forbidden/);
  assert.equal(store.revision, rev);
  await store.close();
});

test('listObjects sorts by namespace then name, one namespace or all', async () => {
  const store = await cluster();
  await applyObjects(store, parse(NS, POD('b'), POD('a'), POD('z').replace('namespace: demo', 'namespace: default')));
  assert.deepEqual((await listObjects(store, 'Pod')).map((p) => `${p.metadata.namespace}/${p.metadata.name}`), ['default/z', 'demo/a', 'demo/b']);
  assert.deepEqual((await listObjects(store, 'Pod', 'demo')).map((p) => p.metadata.name), ['a', 'b']);
  assert.deepEqual((await listObjects(store, 'Namespace')).map((n) => n.metadata.name), ['default', 'demo', 'kube-system']);
  await store.close();
});
