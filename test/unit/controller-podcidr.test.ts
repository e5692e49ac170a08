// The node IPAM decision: lowest free slice, existing CIDRs kept, slices disjoint, exhaustion reported,
// and a CIDR reused only once its Node object is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateNodeCIDRs } from '../../src/controller/podcidr.js';
import { DEFAULT_CLUSTER_CONFIG, podCIDRsOf, type ClusterConfig, type Node } from '../../src/api/types.js';

const v4 = (clusterCIDR: string, mask: number): ClusterConfig => ({ ...DEFAULT_CLUSTER_CONFIG, clusterCIDRs: [clusterCIDR], nodeCIDRMaskSize: { ipv4: mask } });
const fresh = (...names: string[]) => names.map((name) => ({ name, podCIDRs: [] as string[] }));

test('podcidr: new nodes get the lowest free slices, in name order', () => {
  const a = allocateNodeCIDRs(DEFAULT_CLUSTER_CONFIG, fresh('node-2', 'node-1', 'node-3'));
  assert.deepEqual(Object.fromEntries(a), {
    'node-1': ['10.244.0.0/24'], 'node-2': ['10.244.1.0/24'], 'node-3': ['10.244.2.0/24'],
  });
  assert.deepEqual(a.failures, []);
});

test('podcidr: existing CIDRs are kept and the gaps between them are filled first', () => {
  const a = allocateNodeCIDRs(DEFAULT_CLUSTER_CONFIG, [
    { name: 'a', podCIDRs: ['10.244.0.0/24'] },
    { name: 'b', podCIDRs: ['10.244.2.0/24'] },
    ...fresh('c', 'd'),
  ]);
  assert.deepEqual(a.get('a'), ['10.244.0.0/24']);
  assert.deepEqual(a.get('b'), ['10.244.2.0/24']);
  assert.deepEqual(a.get('c'), ['10.244.1.0/24']);
  assert.deepEqual(a.get('d'), ['10.244.3.0/24']);
});

test('podcidr: a CIDR of another size, or outside the pool, still blocks what it overlaps', () => {
  const a = allocateNodeCIDRs(DEFAULT_CLUSTER_CONFIG, [
    { name: 'big', podCIDRs: ['10.244.0.0/23'] },
    { name: 'outside', podCIDRs: ['10.0.0.0/24'] },
    ...fresh('n'),
  ]);
  assert.deepEqual(a.get('n'), ['10.244.2.0/24']);
  assert.deepEqual(a.get('outside'), ['10.0.0.0/24']);
});

test('podcidr: all slices are disjoint, dual-stack included', () => {
  const config: ClusterConfig = { ...DEFAULT_CLUSTER_CONFIG, clusterCIDRs: ['10.244.0.0/20', 'fd00:10:244::/56'], nodeCIDRMaskSize: { ipv4: 24, ipv6: 64 } };
  const names = Array.from({ length: 16 }, (_, i) => `n${String(i).padStart(2, '0')}`);
  const a = allocateNodeCIDRs(config, fresh(...names));
  assert.equal(a.size, 16);
  const all = [...a.values()];
  assert.ok(all.every((c) => c.length === 2 && !c[0].includes(':') && c[1].includes(':')));
  assert.equal(new Set(all.map((c) => c[0])).size, 16);
  assert.equal(new Set(all.map((c) => c[1])).size, 16);
  assert.deepEqual(a.get('n00'), ['10.244.0.0/24', 'fd00:10:244::/64']);
  assert.deepEqual(a.get('n15'), ['10.244.15.0/24', 'fd00:10:244:f::/64']);
});

test('podcidr: an exhausted cluster CIDR leaves the node without a CIDR and says why', () => {
  const a = allocateNodeCIDRs(v4('10.244.0.0/23', 24), fresh('a', 'b', 'x'));
  assert.deepEqual(a.get('a'), ['10.244.0.0/24']);
  assert.deepEqual(a.get('b'), ['10.244.1.0/24']);
  assert.equal(a.has('x'), false);
  assert.deepEqual(a.failures, [{ node: 'x', message: 'cluster CIDR 10.244.0.0/23 has no free /24 for node "x"' }]);
});

test('podcidr: a dual-stack node gets both families or neither', () => {
  const config: ClusterConfig = { ...DEFAULT_CLUSTER_CONFIG, clusterCIDRs: ['10.244.0.0/16', 'fd00::/63'], nodeCIDRMaskSize: { ipv4: 24, ipv6: 64 } };
  const a = allocateNodeCIDRs(config, fresh('a', 'b', 'c', 'd'));
  assert.deepEqual(a.get('b'), ['10.244.1.0/24', 'fd00:0:0:1::/64']);
  assert.equal(a.has('c'), false);
  assert.equal(a.has('d'), false);
  assert.match(a.failures[0].message, /^cluster CIDR fd00::\/63 has no free \/64 for node "c"$/);
  // c's IPv4 slice was not consumed: a later allocation still finds 10.244.2.0/24 free.
  const again = allocateNodeCIDRs(v4('10.244.0.0/16', 24), [...[...a].map(([name, podCIDRs]) => ({ name, podCIDRs: [podCIDRs[0]] })), ...fresh('e')]);
  assert.deepEqual(again.get('e'), ['10.244.2.0/24']);
});

test('podcidr: a CIDR is reused only after its Node object is gone', () => {
  const config = v4('10.244.0.0/23', 24);
  const held = [{ name: 'old', podCIDRs: ['10.244.0.0/24'] }, { name: 'other', podCIDRs: ['10.244.1.0/24'] }];
  // The old node's agent may be gone, but its Node object still holds the CIDR: nothing free.
  const full = allocateNodeCIDRs(config, [...held, ...fresh('new')]);
  assert.equal(full.has('new'), false);
  assert.equal(full.failures.length, 1);
  // Node object deleted: its slice is the lowest free one again.
  const freed = allocateNodeCIDRs(config, [held[1], ...fresh('new')]);
  assert.deepEqual(freed.get('new'), ['10.244.0.0/24']);
});

test('podcidr: a mask that does not fit the cluster CIDR is a config error', () => {
  assert.throws(() => allocateNodeCIDRs(v4('10.244.0.0/16', 12), fresh('a')), /mask size \/12 does not fit cluster CIDR 10.244.0.0\/16/);
  assert.throws(() => allocateNodeCIDRs(v4('10.244.0/16', 24), fresh('a')), /is not a CIDR/);
});

test('podcidr: podCIDRsOf reads podCIDRs, then podCIDR', () => {
  const node = (spec: Node['spec']): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' }, spec });
  assert.deepEqual(podCIDRsOf(node({ podCIDR: '10.0.0.0/24' })), ['10.0.0.0/24']);
  assert.deepEqual(podCIDRsOf(node({ podCIDR: '10.0.0.0/24', podCIDRs: ['10.0.0.0/24', 'fd00::/64'] })), ['10.0.0.0/24', 'fd00::/64']);
  assert.deepEqual(podCIDRsOf(node({})), []);
  assert.deepEqual(podCIDRsOf(undefined), []);
});
