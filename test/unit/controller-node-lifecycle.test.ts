// Node lifecycle: a node that stops heartbeating is NotReady at once, but its pods (and so their
// endpoints) stay ready for the grace period, as Kubernetes' node lifecycle controller keeps them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { ManualClock } from '../../src/store/clock.js';
import { heartbeatKey, objectKey } from '../../src/api/keys.js';
import type { EndpointSlice, Node, Pod, Service } from '../../src/api/types.js';
import { startController } from '../../src/controller/controller.js';
import { DEFAULT_NODE_MONITOR_GRACE_MS, planNodeLifecycle, withPodNotReady } from '../../src/controller/node-lifecycle.js';
import { until } from '../helpers/until.js';

const node = (name: string, ready?: { status: 'True' | 'False'; at: string }): Node => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name, uid: `uid-${name}` }, spec: { podCIDR: '10.244.1.0/24' },
  status: {
    addresses: [{ type: 'InternalIP', address: '192.168.0.1' }],
    ...(ready ? { conditions: [{ type: 'Ready', status: ready.status, lastTransitionTime: ready.at }] } : {}),
  },
});

const pod = (name: string, nodeName: string, ready: boolean, ip = '10.244.1.5'): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'demo', uid: `uid-${name}`, labels: { app: 'web' } },
  spec: { nodeName, containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] },
  status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

test('planNodeLifecycle: only ready pods of nodes NotReady for the grace period; the next deadline otherwise', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const nodes = [
    node('up', { status: 'True', at: '2026-01-01T00:00:00Z' }),
    node('lost-long', { status: 'False', at: '2026-01-01T00:00:00Z' }),
    node('lost-now', { status: 'False', at: '2026-01-01T00:00:30Z' }),
    node('new'),
  ];
  const pods = [pod('a', 'up', true), pod('b', 'lost-long', true), pod('c', 'lost-long', false), pod('d', 'lost-now', true), pod('e', 'new', true)];
  const plan = planNodeLifecycle(nodes, pods, t0 + 40_000, 40_000);
  assert.deepEqual(plan.markNotReady.map((p) => p.metadata.name), ['b']);
  assert.equal(plan.nextCheckAt, t0 + 70_000);
  assert.deepEqual(planNodeLifecycle(nodes, pods, t0 + 39_999, 40_000).markNotReady, []);
  assert.equal(DEFAULT_NODE_MONITOR_GRACE_MS, 40_000);
  const marked = withPodNotReady(pods[1]);
  assert.deepEqual(marked.status?.conditions, [{ type: 'Ready', status: 'False' }]);
  assert.equal(marked.status?.podIP, '10.244.1.5');
});

test('controller: a lost node\'s pods stay ready endpoints through the grace period, then go not ready', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  const logs: string[] = [];
  const graceMs = 1500;
  const controller = await startController({ store, identity: 'test', log: (m) => logs.push(m), resyncMs: 0, nodeMonitorGraceMs: graceMs });
  const get = async <T>(key: string) => { const kv = await store.get(key); return kv && (JSON.parse(kv.value) as T); };
  try {
    await until('leadership', () => controller.isLeader());
    await store.put(objectKey('Node', 'node-1'), JSON.stringify(node('node-1')));
    await store.put(heartbeatKey('node-1'), '{}');
    await store.put(objectKey('Pod', 'web', 'demo'), JSON.stringify(pod('web', 'node-1', true)));
    const svc: Service = {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'demo', uid: 'uid-svc' },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' },
    };
    await store.put(objectKey('Service', 'web', 'demo'), JSON.stringify(svc));
    const endpointReady = async () => {
      const slices = (await store.list('/registry/endpointslices/demo/')).items.map((kv) => JSON.parse(kv.value) as EndpointSlice);
      return slices[0]?.endpoints[0]?.conditions.ready;
    };
    const nodeReady = async () => (await get<Node>(objectKey('Node', 'node-1')))?.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    await until('node Ready and the endpoint ready', async () => (await nodeReady()) === 'True' && (await endpointReady()) === true);

    await store.delete(heartbeatKey('node-1'));
    await until('node NotReady', async () => (await nodeReady()) === 'False');
    const lostAt = Date.parse((await get<Node>(objectKey('Node', 'node-1')))!.status!.conditions![0].lastTransitionTime!);
    assert.equal(await endpointReady(), true, 'the endpoint stays ready right after the node goes NotReady');
    assert.equal((await get<Pod>(objectKey('Pod', 'web', 'demo')))?.status?.conditions?.[0].status, 'True');
    // Nothing else changes in the store: the controller's own timer ends the grace period.
    await until('the endpoint to go not ready', async () => (await endpointReady()) === false, 10_000, 50);
    assert.ok(Date.now() - lostAt >= graceMs, `not ready ${Date.now() - lostAt} ms after the node went NotReady, within the ${graceMs} ms grace period`);
    const p = (await get<Pod>(objectKey('Pod', 'web', 'demo')))!;
    assert.equal(p.status?.conditions?.[0].status, 'False');
    assert.equal(p.status?.podIP, '10.244.1.5', 'the pod keeps its IP: it still runs');
    assert.ok(logs.includes('pod demo/web: not ready (node node-1 is NotReady)'), logs.join('\n'));
  } finally {
    await controller.stop();
    await store.close();
  }
});
