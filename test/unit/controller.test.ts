// The controller's loops on a MemoryStore: node IPAM, node Ready, deployments, scheduler and pod GC,
// driven through the store exactly as agents, kubelets and users would drive them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { ManualClock } from '../../src/store/clock.js';
import { CLUSTER_CONFIG_KEY, CONTROLLER_LEADER_KEY, DEPLOYMENT_PREFIX, POD_PREFIX, heartbeatKey, objectKey } from '../../src/api/keys.js';
import type { ClusterConfig, Deployment, Node, Pod } from '../../src/api/types.js';
import { startController, type Controller } from '../../src/controller/controller.js';
import { planDeployment, readyCondition, schedulePods, SUFFIX_ALPHABET } from '../../src/controller/decisions.js';
import { LeaderElector } from '../../src/controller/leader.js';

const until = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) { if (await cond()) return; await new Promise((r) => setTimeout(r, 10)); }
  assert.fail(`timed out waiting for ${what}`);
};

interface Harness {
  store: MemoryStore;
  controller: Controller;
  logs: string[];
  node(name: string): Promise<Node | undefined>;
  pods(namespace?: string): Promise<Pod[]>;
  addNode(name: string, opts?: { labels?: Record<string, string>; alive?: boolean }): Promise<void>;
  deployment(name: string, replicas: number, extra?: Partial<Deployment['spec']['template']['spec']>): Promise<void>;
  pod(name: string, spec?: Partial<Pod['spec']>): Promise<void>;
}

async function withController(fn: (h: Harness) => Promise<void>, config?: Partial<ClusterConfig>): Promise<void> {
  const store = new MemoryStore({ clock: new ManualClock() });
  if (config) await store.put(CLUSTER_CONFIG_KEY, JSON.stringify(config));
  const logs: string[] = [];
  const controller = await startController({ store, identity: 'test', log: (m) => logs.push(m), resyncMs: 0 });
  const get = async <T>(key: string) => { const kv = await store.get(key); return kv && (JSON.parse(kv.value) as T); };
  const h: Harness = {
    store, controller, logs,
    node: (name) => get<Node>(objectKey('Node', name)),
    pods: async (namespace = 'demo') => (await store.list(`${POD_PREFIX}${namespace}/`)).items.map((kv) => JSON.parse(kv.value) as Pod),
    async addNode(name, opts = {}) {
      const node: Node = {
        apiVersion: 'v1', kind: 'Node',
        metadata: { name, uid: `uid-${name}`, labels: { 'kubernetes.io/hostname': name, ...opts.labels } },
        spec: {}, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }, { type: 'Hostname', address: name }] },
      };
      await store.put(objectKey('Node', name), JSON.stringify(node));
      if (opts.alive ?? true) await store.put(heartbeatKey(name), JSON.stringify({ node: name }));
    },
    async deployment(name, replicas, extra = {}) {
      const key = objectKey('Deployment', name, 'demo');
      const old = await get<Deployment>(key);
      const d: Deployment = old ? { ...old, spec: { ...old.spec, replicas } } : {
        apiVersion: 'apps/v1', kind: 'Deployment',
        metadata: { name, namespace: 'demo', uid: `uid-${name}` },
        spec: {
          replicas, selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', ports: [{ containerPort: 80 }] }], ...extra } },
        },
      };
      await store.put(key, JSON.stringify(d));
    },
    async pod(name, spec = {}) {
      const pod: Pod = {
        apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'demo', uid: `uid-${name}`, creationTimestamp: new Date().toISOString() },
        spec: { containers: [{ name: 'c' }], ...spec }, status: { phase: 'Pending' },
      };
      await store.put(objectKey('Pod', name, 'demo'), JSON.stringify(pod));
    },
  };
  try {
    await until('leadership', () => controller.isLeader());
    await fn(h);
  } finally {
    await controller.stop();
    await store.close();
  }
}

const cidrOf = async (h: Harness, name: string) => (await h.node(name))?.spec.podCIDR;

test('controller: a new node gets a pod CIDR in spec.podCIDR and spec.podCIDRs, addresses untouched', () => withController(async (h) => {
  await h.addNode('node-1');
  await until('a pod CIDR', async () => !!(await cidrOf(h, 'node-1')));
  const node = (await h.node('node-1'))!;
  assert.equal(node.spec.podCIDR, '10.244.0.0/24');
  assert.deepEqual(node.spec.podCIDRs, ['10.244.0.0/24']);
  assert.deepEqual(node.status?.addresses, [{ type: 'InternalIP', address: '192.168.0.1' }, { type: 'Hostname', address: 'node-1' }]);
  assert.ok(h.logs.includes('node node-1: pod CIDR 10.244.0.0/24'), h.logs.join('\n'));
  const leader = await h.store.get(CONTROLLER_LEADER_KEY);
  assert.equal(leader?.value, 'test');
}));

test('controller: two nodes get disjoint CIDRs; a set CIDR is never overwritten', () => withController(async (h) => {
  await h.store.put(objectKey('Node', 'pinned'), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'pinned' }, spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] } }));
  await h.addNode('node-a');
  await h.addNode('node-b');
  await until('both CIDRs', async () => !!(await cidrOf(h, 'node-a')) && !!(await cidrOf(h, 'node-b')));
  const cidrs = [await cidrOf(h, 'pinned'), await cidrOf(h, 'node-a'), await cidrOf(h, 'node-b')];
  assert.deepEqual(cidrs, ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24']);
}));

test('controller: dual-stack config gives each node one CIDR per family', () => withController(async (h) => {
  await h.addNode('node-1');
  await until('a pod CIDR', async () => !!(await cidrOf(h, 'node-1')));
  assert.deepEqual((await h.node('node-1'))!.spec.podCIDRs, ['10.100.0.0/24', 'fd00:100::/64']);
}, { clusterCIDRs: ['10.100.0.0/16', 'fd00:100::/48'] }));

test('controller: an exhausted cluster CIDR leaves the node without one and logs why, once', () => withController(async (h) => {
  await h.addNode('a');
  await until('a CIDR for a', async () => !!(await cidrOf(h, 'a')));
  await h.addNode('b');
  await until('the exhaustion message', () => h.logs.some((l) => l === 'cluster CIDR 10.9.0.0/24 has no free /24 for node "b"'));
  await h.addNode('c'); // another sync: the message for b is not repeated
  await until('the message for c', () => h.logs.some((l) => l.includes('node "c"')));
  assert.equal(h.logs.filter((l) => l.includes('node "b"')).length, 1);
  assert.equal(await cidrOf(h, 'b'), undefined);
  // Deleting a's Node object frees its CIDR for the next one waiting.
  await h.store.delete(objectKey('Node', 'a'));
  await until('b gets the freed CIDR', async () => (await cidrOf(h, 'b')) === '10.9.0.0/24');
}, { clusterCIDRs: ['10.9.0.0/24'], nodeCIDRMaskSize: { ipv4: 24 } }));

test('controller: node Ready follows the heartbeat key, keeping addresses', () => withController(async (h) => {
  await h.addNode('node-1');
  const ready = async () => (await h.node('node-1'))?.status?.conditions?.find((c) => c.type === 'Ready');
  await until('Ready True', async () => (await ready())?.status === 'True');
  assert.equal((await ready())!.reason, 'AgentReady');
  await h.store.delete(heartbeatKey('node-1'));
  await until('Ready False', async () => (await ready())?.status === 'False');
  const node = (await h.node('node-1'))!;
  assert.equal(node.status?.conditions?.[0].reason, 'HeartbeatLost');
  assert.ok(node.status?.conditions?.[0].lastTransitionTime);
  assert.equal(node.status?.addresses?.length, 2);
  assert.equal(node.spec.podCIDR, '10.244.0.0/24');
  await h.store.put(heartbeatKey('node-1'), '{}');
  await until('Ready True again', async () => (await ready())?.status === 'True');
}));

test('controller: a deployment of 5 spreads over the Ready nodes; scaling to 2 deletes 3 gracefully', () => withController(async (h) => {
  await h.addNode('node-1');
  await h.addNode('node-2');
  await h.addNode('dead', { alive: false });
  await until('CIDRs', async () => !!(await cidrOf(h, 'node-1')) && !!(await cidrOf(h, 'node-2')) && !!(await cidrOf(h, 'dead')));
  await h.deployment('web', 5);
  await until('5 bound pods', async () => { const p = await h.pods(); return p.length === 5 && p.every((x) => x.spec.nodeName); });
  const pods = await h.pods();
  for (const p of pods) {
    assert.match(p.metadata.name, new RegExp(`^web-[${SUFFIX_ALPHABET}]{5}$`));
    assert.deepEqual(p.metadata.labels, { app: 'web' });
    assert.deepEqual(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-web' }]);
    assert.ok(p.metadata.uid && p.metadata.creationTimestamp);
    assert.equal(p.status?.phase, 'Pending');
    assert.equal(p.status?.message, undefined);
  }
  const perNode = (ps: Pod[]) => ps.reduce<Record<string, number>>((m, p) => ({ ...m, [p.spec.nodeName!]: (m[p.spec.nodeName!] ?? 0) + 1 }), {});
  assert.deepEqual(perNode(pods), { 'node-1': 3, 'node-2': 2 });
  assert.ok(h.logs.some((l) => /^pod demo\/web-\w{5}: scheduled to node-[12]$/.test(l)));
  await until('status.replicas 5', async () => (await h.store.get(objectKey('Deployment', 'web', 'demo')))?.value.includes('"replicas":5,"readyReplicas":0') ?? false);

  await h.deployment('web', 2);
  // Bound pods are marked terminating, for their kubelet to stop and remove (no kubelet runs here).
  const active = async () => (await h.pods()).filter((p) => !p.metadata.deletionTimestamp);
  await until('2 active pods', async () => (await active()).length === 2);
  await h.controller.idle();
  const left = (await active()).map((p) => p.metadata.name);
  assert.ok(left.every((n) => pods.some((p) => p.metadata.name === n)), 'survivors are old pods');
  const going = (await h.pods()).filter((p) => p.metadata.deletionTimestamp);
  assert.equal(going.length, 3);
  for (const p of going) {
    assert.equal(p.metadata.deletionGracePeriodSeconds, 30);
    const left = Date.parse(p.metadata.deletionTimestamp!) - Date.now();
    assert.ok(left > 20_000 && left <= 30_000, `deletionTimestamp is 30 s ahead: ${p.metadata.deletionTimestamp}`);
  }
  const d = JSON.parse((await h.store.get(objectKey('Deployment', 'web', 'demo')))!.value) as Deployment;
  await until('status.replicas 2', async () => (JSON.parse((await h.store.get(objectKey('Deployment', 'web', 'demo')))!.value) as Deployment).status?.replicas === 2);
  assert.equal(d.spec.replicas, 2);
}));

test('controller: a deleted deployment takes its pods with it', () => withController(async (h) => {
  await h.addNode('node-1');
  await h.deployment('web', 3);
  await h.deployment('db', 1);
  await until('4 pods', async () => (await h.pods()).length === 4);
  await h.store.delete(objectKey('Deployment', 'web', 'demo'));
  // Bound, so terminating (their kubelet removes them); nothing replaces them.
  await until('web pods terminating', async () => (await h.pods()).every((p) => !p.metadata.name.startsWith('web-') || !!p.metadata.deletionTimestamp));
  await h.controller.idle();
  assert.deepEqual((await h.pods()).filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.name.split('-')[0]), ['db'], 'db keeps its pod');
  assert.equal((await h.store.list(DEPLOYMENT_PREFIX)).items.length, 1);
}));

test('controller: with no Ready node a pod stays Pending with a message written once', () => withController(async (h) => {
  await h.addNode('node-1', { alive: false });
  await h.pod('lonely');
  const pod = async () => (await h.pods()).find((p) => p.metadata.name === 'lonely')!;
  await until('the message', async () => !!(await pod()).status?.message);
  assert.equal((await pod()).status?.message, '0/1 nodes are available: 1 node(s) were not ready.');
  assert.equal((await pod()).status?.phase, 'Pending');
  const rev = (await h.store.get(objectKey('Pod', 'lonely', 'demo')))!.modRevision;
  // More syncs (other changes) do not rewrite it.
  await h.addNode('node-2', { alive: false });
  await until('the message naming 2 nodes', async () => (await pod()).status?.message?.startsWith('0/2') ?? false);
  const rev2 = (await h.store.get(objectKey('Pod', 'lonely', 'demo')))!.modRevision;
  await h.store.put('/registry/pods/other/x', JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', namespace: 'other' }, spec: { containers: [], nodeName: 'node-1' } }));
  await new Promise((r) => setTimeout(r, 200));
  await h.controller.idle();
  assert.equal((await h.store.get(objectKey('Pod', 'lonely', 'demo')))!.modRevision, rev2);
  assert.ok(rev2 > rev);
  // A node coming alive schedules it and clears the message.
  await h.store.put(heartbeatKey('node-2'), '{}');
  await until('bound', async () => (await pod()).spec.nodeName === 'node-2');
  assert.equal((await pod()).status?.message, undefined);
}));

test('controller: nodeSelector picks among matching nodes only; hostNetwork pods schedule the same way', () => withController(async (h) => {
  await h.addNode('node-1');
  await h.addNode('node-2', { labels: { disk: 'ssd' } });
  await until('CIDRs', async () => !!(await cidrOf(h, 'node-2')));
  await h.pod('fast-1', { nodeSelector: { disk: 'ssd' } });
  await h.pod('fast-2', { nodeSelector: { disk: 'ssd' }, hostNetwork: true });
  await h.pod('gpu', { nodeSelector: { gpu: 'yes' } });
  const byName = async () => Object.fromEntries((await h.pods()).map((p) => [p.metadata.name, p]));
  await until('ssd pods bound and gpu unschedulable', async () => {
    const p = await byName();
    return p['fast-1'].spec.nodeName === 'node-2' && p['fast-2'].spec.nodeName === 'node-2' && !!p.gpu.status?.message;
  });
  assert.equal((await byName()).gpu.status?.message, "0/2 nodes are available: 2 node(s) didn't match Pod's node selector.");
}));

test('controller: pods on a deleted node are removed (and a deployment replaces them)', () => withController(async (h) => {
  await h.addNode('node-1');
  await h.addNode('node-2');
  await until('CIDRs', async () => !!(await cidrOf(h, 'node-1')) && !!(await cidrOf(h, 'node-2')));
  await h.pod('stray', { nodeName: 'node-2' });
  await h.deployment('web', 2);
  await until('2 web pods bound', async () => (await h.pods()).filter((p) => p.metadata.name.startsWith('web-') && p.spec.nodeName).length === 2);
  await h.store.delete(objectKey('Node', 'node-2'));
  await h.store.delete(heartbeatKey('node-2'));
  await until('everything on node-1', async () => {
    const p = await h.pods();
    return p.length === 2 && p.every((x) => x.spec.nodeName === 'node-1');
  });
  assert.ok(h.logs.includes('pod demo/stray: deleted (node node-2 is gone)'), h.logs.join('\n'));
}));

test('controller: a stopped controller revokes its leader key', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  const a = await startController({ store, identity: 'a', log: () => undefined, resyncMs: 0 });
  const b = await startController({ store, identity: 'b', log: () => undefined, resyncMs: 0 });
  try {
    await until('one leader', () => a.isLeader() !== b.isLeader());
    const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
    await leader.stop();
    assert.equal(leader.isLeader(), false);
    await until('the standby leads', () => standby.isLeader());
  } finally {
    await a.stop();
    await b.stop();
    await store.close();
  }
});

// ---- the pure decisions ----

const node = (name: string, opts: { cidr?: boolean; labels?: Record<string, string> } = {}): Node => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name, labels: opts.labels }, spec: opts.cidr === false ? {} : { podCIDR: '10.0.0.0/24' },
});
const pod = (name: string, spec: Partial<Pod['spec']> = {}, ts = '2024-01-01T00:00:00.000Z'): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'demo', creationTimestamp: ts }, spec: { containers: [], ...spec },
});

test('decisions: the scheduler picks the least loaded fitting node, ties by name', () => {
  const nodes = [node('b'), node('a'), node('c', { cidr: false }), node('d')];
  const r = schedulePods([pod('x', { nodeName: 'a' }), pod('p1'), pod('p2'), pod('p3')], nodes, new Set(['a', 'b', 'c']));
  assert.deepEqual(r.bindings.map((b) => `${b.pod.metadata.name}->${b.nodeName}`), ['p1->b', 'p2->a', 'p3->b']);
  const none = schedulePods([pod('p')], nodes, new Set(['c']));
  assert.equal(none.unschedulable[0].message, '0/4 nodes are available: 1 node(s) had no pod CIDR, 3 node(s) were not ready.');
  assert.equal(schedulePods([pod('p')], [], new Set()).unschedulable[0].message, '0/0 nodes are available: no nodes are registered.');
});

test('decisions: readyCondition changes only on a transition', () => {
  const n = node('a');
  const up = readyCondition(n, true, 'T1')!;
  assert.deepEqual(up, { type: 'Ready', status: 'True', reason: 'AgentReady', message: 'the flatnet agent is keeping its heartbeat', lastTransitionTime: 'T1' });
  assert.equal(readyCondition({ ...n, status: { conditions: [up] } }, true, 'T2'), undefined);
  assert.equal(readyCondition({ ...n, status: { conditions: [up] } }, false, 'T2')?.reason, 'HeartbeatLost');
});

test('decisions: planDeployment removes the newest extras and never reuses a taken name', () => {
  const d: Deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'demo', uid: 'u' },
    spec: { replicas: 1, selector: { matchLabels: {} }, template: { spec: { containers: [] } } },
  };
  const owned = [pod('web-old', {}, '2024-01-01T00:00:00.000Z'), pod('web-new', {}, '2024-01-03T00:00:00.000Z'), pod('web-mid', {}, '2024-01-02T00:00:00.000Z')];
  const down = planDeployment(d, owned, new Set(), { suffix: () => 'bbbbb', uid: () => 'x', now: 'T' });
  assert.deepEqual(down.remove.map((p) => p.metadata.name), ['web-new', 'web-mid']);
  assert.deepEqual(down.status, { replicas: 1, readyReplicas: 0 });
  const suffixes = ['bbbbb', 'bbbbb', 'ccccc', 'ccccc', 'ddddd'];
  const up = planDeployment({ ...d, spec: { ...d.spec, replicas: 2 } }, [], new Set(['web-bbbbb']), { suffix: () => suffixes.shift()!, uid: () => 'x', now: 'T' });
  assert.deepEqual(up.create.map((p) => p.metadata.name), ['web-ccccc', 'web-ddddd']);
  assert.deepEqual(up.status, { replicas: 2, readyReplicas: 0 });
});

test('leader: a leader whose lease expires stops at once and the standby takes over', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const events: string[] = [];
  const elect = (identity: string) => new LeaderElector({
    store, identity, leaseTtlSeconds: 4,
    onStartedLeading: () => events.push(`${identity} leading`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
  const a = elect('a');
  const b = elect('b');
  try {
    await a.start();
    await b.start();
    assert.deepEqual([a.isLeader(), b.isLeader()], [true, false]);
    assert.equal((await store.get(CONTROLLER_LEADER_KEY))?.lease !== undefined, true, 'the key lives on a lease');
    // The lease runs out (as when the leader's process hangs): its key goes, a's term ends, b wins.
    clock.advance(5000);
    await until('b leads', () => b.isLeader());
    assert.equal(a.isLeader(), false);
    assert.deepEqual(events.slice(0, 3), ['a leading', 'a stopped', 'b leading']);
    assert.equal((await store.get(CONTROLLER_LEADER_KEY))?.value, 'b');
    // a is a candidate again and waits: b's key stays.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.isLeader(), false);
    await b.stop();
    await until('a leads after b stops', () => a.isLeader());
  } finally {
    await a.stop();
    await b.stop();
    await store.close();
  }
});

test('controller: a namespace left Terminating for its draining pods is removed once they are gone', () => withController(async (h) => {
  const ns = (name: string, phase: 'Active' | 'Terminating') => JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase } });
  await h.addNode('n1'); // a pod on a missing node would be collected at once
  await h.store.put(objectKey('Namespace', 'demo'), ns('demo', 'Terminating'));
  await h.store.put(objectKey('Namespace', 'live'), ns('live', 'Active'));
  await h.store.put(objectKey('Namespace', 'empty'), ns('empty', 'Terminating'));
  const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'demo', uid: 'u1', deletionTimestamp: '2026-12-02T10:00:30Z' }, spec: { nodeName: 'n1', containers: [{ name: 'c' }] } };
  await h.store.put(objectKey('Pod', 'p', 'demo'), JSON.stringify(pod));
  await until('the empty Terminating namespace removed', async () => !(await h.store.get(objectKey('Namespace', 'empty'))));
  await h.controller.idle();
  assert.ok(await h.store.get(objectKey('Namespace', 'demo')), 'kept while its pod drains');
  assert.ok(await h.store.get(objectKey('Namespace', 'live')), 'an Active namespace is never touched');
  await h.store.delete(objectKey('Pod', 'p', 'demo')); // its kubelet removes it
  await until('demo removed after its last pod', async () => !(await h.store.get(objectKey('Namespace', 'demo'))));
  assert.ok(h.logs.includes('namespace demo: deleted (its pods are gone)'));
}));
