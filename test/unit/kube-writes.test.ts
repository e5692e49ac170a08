// The two writes flatnet makes through the Kubernetes API, against the lab's API server (memory store):
// the agent's NetworkUnavailable=False on nodes/status (nothing else of the Node touched), and the
// kubernetes-mode controller's pod CIDRs (lowest free slices, existing ones respected, idempotent
// across a restart). Also: the agent waits for the Node the kubelet registers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/store/memory.js';
import { kubeconfigText, makePki } from '../../src/apiserver/pki.js';
import { startApiServer } from '../../src/apiserver/server.js';
import { objectKey } from '../../src/api/keys.js';
import { DEFAULT_CLUSTER_CONFIG, podCIDRsOf, type Node } from '../../src/api/types.js';
import { connectKube } from '../../src/kube/connect.js';
import { kubeDatastore } from '../../src/kube/agent-datastore.js';
import { startKubePodCIDRController } from '../../src/controller/kube-podcidr.js';
import type { Underlay } from '../../src/agent/underlay.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'fnt-kubewrites-'));
const store = new MemoryStore();
const pki = makePki(join(dir, 'pki'));
const server = await startApiServer({ store, pki });
const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(kubeconfig, kubeconfigText('writes', server.url, pki));
const kc = connectKube(kubeconfig);
after(async () => {
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const readyCondition = { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: '2026-12-06T20:00:00Z', lastTransitionTime: '2026-12-06T20:00:00Z' };
const node = (name: string, podCIDRs: string[] = []): Node => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name, uid: `uid-${name}`, creationTimestamp: '2026-12-06T20:00:00Z', labels: { 'kubernetes.io/hostname': name } },
  spec: podCIDRs.length ? { podCIDR: podCIDRs[0], podCIDRs } : {},
  status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], conditions: [readyCondition] },
} as Node);
const putNode = (n: Node) => store.put(objectKey('Node', n.metadata.name), JSON.stringify(n));
const stored = async (name: string): Promise<Node | undefined> => {
  const kv = await store.get(objectKey('Node', name));
  return kv ? JSON.parse(kv.value) as Node : undefined;
};
const log = () => {};
const underlay = { ifname: 'eth0', cidr: '10.0.0.1/24', nodeIP: '10.0.0.1', mtu: 1500 } as Underlay;

test('the agent waits for its Node, then marks NetworkUnavailable=False and changes nothing else', async () => {
  const ds = kubeDatastore(kc, DEFAULT_CLUSTER_CONFIG, { retryMs: 100 });
  try {
    let registered = false;
    const registering = ds.register('w-1', underlay, log).then(() => { registered = true; });
    await ds.view.start();
    assert.equal(registered, false, 'no Node yet: still waiting for the kubelet to register it');
    await putNode(node('w-1', ['10.244.7.0/24']));
    await registering;
    const before = (await stored('w-1'))!;
    await ds.markNetworkAvailable('w-1', log);
    const afterPatch = (await stored('w-1'))!;
    const conditions = afterPatch.status!.conditions as Array<{ type: string; status: string; reason?: string; lastTransitionTime?: string }>;
    const cond = conditions.find((c) => c.type === 'NetworkUnavailable')!;
    assert.deepEqual([cond.status, cond.reason], ['False', 'FlatnetIsUp']);
    assert.match(cond.lastTransitionTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Everything else as the kubelet left it: spec, addresses, the Ready condition.
    const rest = structuredClone(afterPatch);
    rest.status!.conditions = rest.status!.conditions!.filter((c) => (c as { type: string }).type !== 'NetworkUnavailable');
    assert.deepEqual(rest, before);
  } finally { await ds.close(); }
});

test('the kubernetes-mode controller: lowest free slices around the held one, idempotent across a restart', async () => {
  const config = { ...DEFAULT_CLUSTER_CONFIG, clusterCIDRs: ['10.245.0.0/16'], nodeCIDRMaskSize: { ipv4: 24 } };
  // A cluster of its own: no node of the other test's shares the range.
  await putNode(node('c-held', ['10.245.0.0/24']));
  await putNode(node('c-b'));
  await putNode(node('c-a'));
  const want = { 'c-held': ['10.245.0.0/24'], 'c-a': ['10.245.1.0/24'], 'c-b': ['10.245.2.0/24'] } as Record<string, string[]>;
  const cidrs = async (): Promise<Record<string, string[]>> => Object.fromEntries(await Promise.all(Object.keys(want).map(async (n) => [n, podCIDRsOf(await stored(n))])));
  let controller = await startKubePodCIDRController({ kc, config, log });
  try {
    await until('every node with a pod CIDR', async () => Object.values(await cidrs()).every((c) => c.length > 0));
    assert.deepEqual(await cidrs(), want);
    const b = (await stored('c-b'))!;
    assert.equal(b.spec.podCIDR, '10.245.2.0/24');
    assert.deepEqual(b.status, node('c-b').status, 'status untouched');
    await controller.stop();
    // A restart decides nothing new for nodes that have CIDRs; a new node gets the next free slice.
    const revisions = await Promise.all(Object.keys(want).map(async (n) => (await store.get(objectKey('Node', n)))!.modRevision));
    controller = await startKubePodCIDRController({ kc, config, log });
    await putNode(node('c-new'));
    await until('the new node with a pod CIDR', async () => podCIDRsOf(await stored('c-new')).length > 0);
    assert.deepEqual(podCIDRsOf(await stored('c-new')), ['10.245.3.0/24']);
    await controller.idle();
    assert.deepEqual(await Promise.all(Object.keys(want).map(async (n) => (await store.get(objectKey('Node', n)))!.modRevision)), revisions);
  } finally { await controller.stop(); }
});
