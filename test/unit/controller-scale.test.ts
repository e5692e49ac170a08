// What a user can type that would have frozen the controller or overfilled a node: a Deployment of a
// billion replicas is worked through in bounded slow-start batches while every other loop keeps
// running, and a node takes no more pods than maxPods or its pod CIDR allows; the rest stay Pending
// with kube-scheduler's reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { ManualClock } from '../../src/store/clock.js';
import { CLUSTER_CONFIG_KEY, POD_PREFIX, heartbeatKey, kindPrefix, objectKey } from '../../src/api/keys.js';
import type { Deployment, EndpointSlice, Node, Pod, Service } from '../../src/api/types.js';
import { startController } from '../../src/controller/controller.js';
import { planDeployment, schedulePods } from '../../src/controller/decisions.js';
import { podAddresses } from '../../src/controller/capacity.js';
import { BURST_REPLICAS, slowStartBatch } from '../../src/controller/slow-start.js';
import { until } from '../helpers/until.js';

const node = (name: string, podCIDR?: string): Node => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name, labels: {} }, spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {},
});
const pod = (name: string, spec: Partial<Pod['spec']> = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'demo', creationTimestamp: `2024-01-01T00:00:${String(name.length).padStart(2, '0')}Z` },
  spec: { containers: [{ name: 'c' }], ...spec }, status: { phase: 'Pending' },
});
const deployment = (replicas: number): Deployment => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'huge', namespace: 'demo', uid: 'uid-huge' },
  spec: { replicas, selector: { matchLabels: { app: 'huge' } }, template: { metadata: { labels: { app: 'huge' } }, spec: { containers: [{ name: 'c' }] } } },
});

test('decisions: a node takes at most maxPods (110 by default) and no more pods than its pod CIDR has addresses', () => {
  assert.equal(podAddresses('10.244.1.0/24'), 253, 'all but the network, the gateway and the broadcast');
  assert.equal(podAddresses('10.244.1.0/30'), 1);
  assert.equal(podAddresses('fd00:10:244:1::/64'), Number.MAX_SAFE_INTEGER);
  const nodes = ['a', 'b', 'c'].map((n, i) => node(n, `10.244.${i}.0/24`));
  const alive = new Set(['a', 'b', 'c']);
  const many = Array.from({ length: 340 }, (_, i) => pod(`p${i}`));
  const r = schedulePods(many, nodes, alive);
  assert.equal(r.bindings.length, 330);
  assert.deepEqual(['a', 'b', 'c'].map((n) => r.bindings.filter((b) => b.nodeName === n).length), [110, 110, 110]);
  assert.equal(r.unschedulable.length, 10);
  assert.equal(r.unschedulable[0].message, '0/3 nodes are available: 3 Too many pods.');

  // The cluster's maxPods; pods already bound count, host-network ones too.
  const bound = [pod('x', { nodeName: 'a' }), pod('y', { nodeName: 'a', hostNetwork: true })];
  const small = schedulePods([...bound, pod('q1'), pod('q2'), pod('q3')], nodes.slice(0, 1), new Set(['a']), { maxPods: 4 });
  assert.deepEqual(small.bindings.map((b) => b.pod.metadata.name), ['q1', 'q2']);
  assert.equal(small.unschedulable[0].message, '0/1 nodes are available: 1 Too many pods.');

  // A /30 holds one pod address: a second pod on the pod network waits; a host-network pod still fits.
  const tiny = [node('t', '10.244.9.0/30')];
  const full = schedulePods([pod('a1'), pod('a22'), pod('h333', { hostNetwork: true })], tiny, new Set(['t']));
  assert.deepEqual(full.bindings.map((b) => b.pod.metadata.name), ['a1', 'h333']);
  assert.equal(full.unschedulable[0].message, '0/1 nodes are available: 1 node(s) had no free address in their pod CIDR.');
});

test('decisions: a Deployment of a billion replicas plans at most burstReplicas (500) pods per sync', () => {
  let n = 0;
  const plan = planDeployment(deployment(1_000_000_000), [], new Set(), { suffix: () => String(n++).padStart(5, '0'), uid: () => 'u', now: 'T' });
  assert.equal(plan.create.length, BURST_REPLICAS);
});

test('slowStartBatch: batches of 1, 2, 4, ...; a batch with a failure is the last', async () => {
  const batches: number[][] = [];
  let inBatch: number[] = [];
  const ok = await slowStartBatch(20, async (i) => { inBatch.push(i); await Promise.resolve(); if (inBatch.length > 0) { batches.push(inBatch); inBatch = []; } return i !== 5; });
  assert.equal(ok, 6, 'indexes 0-6 ran (batches 1, 2, 4), index 5 failed, nothing after');
  assert.deepEqual(batches.flat(), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(await slowStartBatch(20, async () => true), 20);
});

test('controller: a billion-replica Deployment is created in bounded batches while node Ready, EndpointSlices and scheduling go on', async () => {
  const store = new MemoryStore({ clock: new ManualClock(), historyLimit: 100_000 });
  await store.put(CLUSTER_CONFIG_KEY, JSON.stringify({ maxPods: 20 }));
  await store.put(objectKey('Deployment', 'huge', 'demo'), JSON.stringify(deployment(1_000_000_000)));
  const logs: string[] = [];
  const controller = await startController({ store, identity: 'test', log: (m) => logs.push(m), resyncMs: 0 });
  const podCount = async () => (await store.list(`${POD_PREFIX}demo/`)).items.length;
  const get = async <T>(key: string) => { const kv = await store.get(key); return kv && (JSON.parse(kv.value) as T); };
  try {
    await until('the controller to create the first batches', async () => (await podCount()) >= 1000, 20_000);
    // While it goes on: a node registers and a Service is applied; both are acted on.
    await store.put(objectKey('Node', 'n1'), JSON.stringify(node('n1')));
    await store.put(heartbeatKey('n1'), JSON.stringify({ node: 'n1' }));
    const svc: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'demo', uid: 'uid-web' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', selector: { app: 'web' }, ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }] } };
    await store.put(objectKey('Service', 'web', 'demo'), JSON.stringify(svc));
    await until('node n1 Ready', async () => (await get<Node>(objectKey('Node', 'n1')))?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false, 20_000);
    await until('the Service\'s EndpointSlice', async () => (await store.list(kindPrefix('EndpointSlice', 'demo'))).items
      .some((kv) => (JSON.parse(kv.value) as EndpointSlice).metadata.labels?.['kubernetes.io/service-name'] === 'web'), 20_000);
    await until('n1 to be full (maxPods 20) and the rest Pending as Unschedulable', async () => {
      const pods = (await store.list(`${POD_PREFIX}demo/`)).items.map((kv) => JSON.parse(kv.value) as Pod);
      return pods.filter((p) => p.spec.nodeName === 'n1').length === 20 && pods.some((p) => p.status?.conditions?.some((c) =>
        c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable' && c.message === '0/1 nodes are available: 1 Too many pods.'));
    }, 20_000);
    const bursts = logs.map((l) => /deployment demo\/huge: created (\d+) pods/.exec(l)).filter((m) => m !== null).map((m) => Number(m![1]));
    assert.ok(bursts.length >= 2 && bursts.every((b) => b <= BURST_REPLICAS), `bounded bursts: ${bursts.join(', ')}`);
    assert.ok((await podCount()) < 1_000_000_000);
  } finally {
    await controller.stop();
    await store.close();
  }
});

test('controller: 1200 pending pods are all marked Unschedulable, a bounded number per sync', async () => {
  const store = new MemoryStore({ clock: new ManualClock(), historyLimit: 100_000 });
  for (let i = 0; i < 1200; i++) await store.put(objectKey('Pod', `p${i}`, 'demo'), JSON.stringify(pod(`p${i}`)));
  const controller = await startController({ store, identity: 'test', log: () => undefined, resyncMs: 0 });
  try {
    await until('every pod to carry PodScheduled False', async () => (await store.list(`${POD_PREFIX}demo/`)).items
      .every((kv) => (JSON.parse(kv.value) as Pod).status?.conditions?.some((c) => c.type === 'PodScheduled' && c.message === '0/0 nodes are available: no nodes are registered.')), 20_000);
  } finally {
    await controller.stop();
    await store.close();
  }
});
