// Graceful pod deletion as data: a delete marks a bound pod terminating instead of removing it, the
// EndpointSlice lists it as terminating (serving, not ready), and the proxy sends new connections to
// ready endpoints, falling back to the draining ones only when no endpoint is ready.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { applyObjects, deleteObjects, listObjects } from '../../src/api/apply.js';
import { parseManifests } from '../../src/api/manifest.js';
import { objectKey } from '../../src/api/keys.js';
import { formatTable } from '../../src/api/format.js';
import { graceLeftMs, isTerminating, markTerminating } from '../../src/api/termination.js';
import { desiredSlices } from '../../src/controller/endpoints.js';
import { renderProxy } from '../../src/dataplane/proxy/render.js';
import type { Namespace, Pod, Service } from '../../src/api/types.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');

function pod(name: string, opts: { node?: string; ip?: string; ready?: boolean; grace?: number } = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'demo', uid: `uid-${name}`, labels: { app: 'web' } },
    spec: { containers: [{ name: 'c', ports: [{ containerPort: 8080 }] }], ...(opts.node ? { nodeName: opts.node } : {}), ...(opts.grace !== undefined ? { terminationGracePeriodSeconds: opts.grace } : {}) },
    status: { phase: 'Running', podIP: opts.ip, conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  };
}

test('markTerminating: a bound pod gets deletionTimestamp = now + grace; unbound or grace 0 goes at once; again only sooner', () => {
  const marked = markTerminating(pod('a', { node: 'n1' }), T0)!;
  assert.equal(marked.metadata.deletionTimestamp, '2026-12-02T10:00:30.000Z', 'the default 30 s');
  assert.equal(marked.metadata.deletionGracePeriodSeconds, 30);
  assert.equal(graceLeftMs(marked, T0 + 10_000), 20_000);
  assert.equal(graceLeftMs(marked, T0 + 40_000), 0);
  assert.equal(markTerminating(pod('b', { node: 'n1', grace: 5 }), T0)!.metadata.deletionGracePeriodSeconds, 5, 'the pod\'s own period');
  assert.equal(markTerminating(pod('c', { node: 'n1', grace: 5 }), T0, 2)!.metadata.deletionGracePeriodSeconds, 2, '--grace-period wins');
  assert.equal(markTerminating(pod('d'), T0), undefined, 'never bound to a node: nothing to stop');
  assert.equal(markTerminating(pod('e', { node: 'n1' }), T0, 0), undefined, '--grace-period 0');
  assert.equal(markTerminating(marked, T0 + 1000), marked, 'deleting again changes nothing');
  assert.equal(markTerminating(marked, T0 + 1000, 1)!.metadata.deletionTimestamp, '2026-12-02T10:00:02.000Z', 'a shorter period brings it closer');
  assert.equal(markTerminating(marked, T0 + 1000, 0), undefined);
});

test('delete: a bound pod is marked terminating, an unbound one removed, --grace-period 0 removes; a namespace marks its pods', async () => {
  const store = new MemoryStore();
  await store.put(objectKey('Namespace', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
  const docs = (names: string[]) => parseManifests(['apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n',
    ...names.map((n) => `apiVersion: v1\nkind: Pod\nmetadata: { name: ${n}, namespace: demo }\nspec: { terminationGracePeriodSeconds: 7, containers: [{ name: c }] }\n`)].join('---\n'), 't.yaml');
  await applyObjects(store, docs(['bound', 'unbound', 'forced', 'other']));
  for (const n of ['bound', 'forced', 'other']) {
    const key = objectKey('Pod', n, 'demo');
    const p = JSON.parse((await store.get(key))!.value) as Pod;
    await store.put(key, JSON.stringify({ ...p, spec: { ...p.spec, nodeName: 'node-1' } }));
  }
  const lines = await deleteObjects(store, docs(['bound', 'unbound']).slice(1));
  assert.deepEqual(lines.map((r) => r.line), ['pod "bound" deleted', 'pod "unbound" deleted']);
  await deleteObjects(store, docs(['forced']).slice(1), { graceSeconds: 0 });
  const left = (await listObjects(store, 'Pod')) as Pod[];
  assert.deepEqual(left.map((p) => [p.metadata.name, isTerminating(p), p.metadata.deletionGracePeriodSeconds]), [['bound', true, 7], ['other', false, undefined]]);
  assert.match(formatTable('Pod', left, { wide: false, allNamespaces: false }), /^bound +0\/1 +Terminating /m);

  await deleteObjects(store, docs([]));
  const after = (await listObjects(store, 'Pod')) as Pod[];
  assert.deepEqual(after.map((p) => [p.metadata.name, isTerminating(p)]), [['bound', true], ['other', true]], 'the namespace\'s pods terminate, their kubelet removes them');
  // The namespace waits for them, Terminating (the controller removes it after), and takes nothing new.
  const ns = JSON.parse((await store.get(objectKey('Namespace', 'demo')))!.value) as Namespace;
  assert.equal(ns.status?.phase, 'Terminating');
  assert.ok(ns.metadata.deletionTimestamp);
  assert.match(formatTable('Namespace', [ns], { wide: false, allNamespaces: false }), /^demo +Terminating /m);
  await assert.rejects(applyObjects(store, docs(['late']).slice(1)), /Pod "demo\/late": unable to create new content in namespace "demo" because it is being terminated/);
  await assert.rejects(applyObjects(store, docs(['late'])), /unable to create new content in namespace "demo"/, 'also with the Namespace in the same file');
  const rev = store.revision;
  await deleteObjects(store, docs([]));
  assert.equal(store.revision, rev, 'deleting it again writes nothing');
});

test('EndpointSlice: a terminating pod is listed serving and terminating, never ready', () => {
  const svc: Service = {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'demo' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ protocol: 'TCP', port: 80, targetPort: 8080 }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' },
  };
  const going = markTerminating(pod('a', { node: 'n1', ip: '10.244.1.2' }), T0)!;
  const notReadyGoing = markTerminating(pod('b', { node: 'n1', ip: '10.244.1.3', ready: false }), T0)!;
  const [slice] = desiredSlices(svc, [going, notReadyGoing, pod('c', { node: 'n2', ip: '10.244.2.2' })]);
  assert.deepEqual(slice.endpoints.map((e) => [e.addresses[0], e.conditions]), [
    ['10.244.1.2', { ready: false, serving: true, terminating: true }],
    ['10.244.1.3', { ready: false, serving: false, terminating: true }],
    ['10.244.2.2', { ready: true, serving: true, terminating: false }],
  ]);

  // The proxy: the ready endpoint only; with it gone, the serving terminating one (kube-proxy's fallback).
  const plan = (pods: Pod[], local = false) => renderProxy({
    nodeName: 'n1', nodeIPs: ['10.100.0.11'], services: [{ ...svc, spec: { ...svc.spec, internalTrafficPolicy: local ? 'Local' : 'Cluster' } }], slices: desiredSlices(svc, pods),
  }).elements;
  assert.deepEqual([...plan([going, notReadyGoing, pod('c', { node: 'n2', ip: '10.244.2.2' })]).endpoints.values()], ['10.244.2.2 . 8080']);
  assert.deepEqual([...plan([going, notReadyGoing]).endpoints.values()], ['10.244.1.2 . 8080'], 'no ready endpoint: the draining one serves');
  assert.equal(plan([notReadyGoing])['no-endpoints'].get('10.96.0.10 . tcp . 80'), 'goto refuse', 'not serving: refused');
  assert.deepEqual([...plan([going, pod('c', { node: 'n2', ip: '10.244.2.2' })], true).endpoints.values()], ['10.244.1.2 . 8080'], 'Local policy: this node\'s draining endpoint before none');
  assert.ok(plan([going]).hairpin.has('10.244.1.2 . 10.244.1.2'), 'a draining local endpoint can still reach itself');
});
