// The lab's node network as data: the cluster file's checks and the namespaces and links a lab gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultCluster, parseClusterFile, withNodeIPs } from '../../src/lab/cluster-file.js';
import { planTopology } from '../../src/lab/topology.js';

test('the default lab: three nodes on two segments joined by a router, an external host, auto backend', () => {
  const plan = planTopology('lab1', defaultCluster());
  assert.deepEqual(plan.nodes.map((n) => `${n.name} ${n.netns} ${n.segment} ${n.ip}`), [
    'node-1 lab1-n-node-1 a 10.100.0.11', 'node-2 lab1-n-node-2 a 10.100.0.12', 'node-3 lab1-n-node-3 b 10.100.1.11',
  ]);
  assert.deepEqual(plan.external, { netns: 'lab1-ext', ip: '203.0.113.10' });
  assert.deepEqual(plan.namespaces, ['lab1-fabric', 'lab1-router', 'lab1-ext', 'lab1-n-node-1', 'lab1-n-node-2', 'lab1-n-node-3']);
  assert.deepEqual(plan.switches, ['sw-a', 'sw-b', 'sw-ext']);
  const n3 = plan.ports.find((p) => p.netns === 'lab1-n-node-3')!;
  assert.deepEqual(n3, { netns: 'lab1-n-node-3', dev: 'eth0', sw: 'sw-b', addr: '10.100.1.11/24', gateway: '10.100.1.1' });
  // The router has a port on every segment and on the external host's, and no default route.
  assert.deepEqual(plan.ports.filter((p) => p.netns === 'lab1-router').map((p) => `${p.dev}@${p.sw} ${p.addr} ${p.gateway ?? '-'}`),
    ['seg-a@sw-a 10.100.0.1/24 -', 'seg-b@sw-b 10.100.1.1/24 -', 'seg-ext@sw-ext 203.0.113.1/24 -']);
  assert.ok(plan.ports.every((p) => p.dev.length <= 15 && `${p.sw}-p`.length <= 15), 'link names fit IFNAMSIZ');
});

test('node addresses stay fixed: a removed node frees its address for the next one', () => {
  const c = withNodeIPs(defaultCluster());
  const without2 = { ...c, nodes: c.nodes.filter((n) => n.name !== 'node-2') };
  const added = withNodeIPs({ ...without2, nodes: [...without2.nodes, { name: 'node-4', segment: 'a' }] });
  assert.deepEqual(added.nodes.map((n) => `${n.name}=${n.ip}`), ['node-1=10.100.0.11', 'node-3=10.100.1.11', 'node-4=10.100.0.12']);
});

test('cluster files: defaults fill what is absent; bad values are named with the file and field', () => {
  const c = parseClusterFile('backend: vxlan\nnodes: [{ name: n1 }, { name: n2, segment: b }]\n', 'c.yaml');
  assert.equal(c.backend, 'vxlan');
  assert.deepEqual(c.nodes, [{ name: 'n1', segment: 'a' }, { name: 'n2', segment: 'b' }]);
  const bad: Array<[string, RegExp]> = [
    ['backend: flat\n', /c\.yaml: backend: "flat" is not one of host-gw, vxlan, auto$/],
    ['clusterCIDR: 10.244.0.1/16\n', /clusterCIDR: "10\.244\.0\.1\/16" has host bits set \(did you mean 10\.244\.0\.0\/16\?\)/],
    ['nodes: [{ name: n1, segment: z }]\n', /nodes\[0\]\.segment: "z" is not a segment \(a, b\)/],
    ['nodes: [{ name: n1 }, { name: n1 }]\n', /nodes\[1\]\.name: "n1" is used twice/],
    ['segments: [{ name: a, subnet: 10.244.5.0/24 }]\n', /segments\[0\]\.subnet: overlaps clusterCIDR/],
    ['nodeCIDRMaskSize: 12\n', /nodeCIDRMaskSize: 12 must be an integer between 16/],
    ['colour: blue\n', /c\.yaml: colour: unknown field/],
    ['nodes: [{ name: Node_1 }]\n', /nodes\[0\]\.name: "Node_1" must be 1-13 lowercase/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseClusterFile(text, 'c.yaml'), re, text);
});

test('cluster files: more nodes than the cluster CIDR has node slices are refused at parse time', () => {
  const nodes = (n: number) => `nodes: [${Array.from({ length: n }, (_, i) => `{ name: n${i}, segment: ${i % 2 ? 'a' : 'b'} }`).join(', ')}]\n`;
  assert.throws(() => parseClusterFile(nodes(300), 'c.yaml'),
    /c\.yaml: nodes: 300 nodes, but clusterCIDR "10\.244\.0\.0\/16" cut into \/24s \(nodeCIDRMaskSize\) holds only 256 node pod CIDRs$/);
  assert.equal(parseClusterFile(nodes(256), 'c.yaml').nodes.length, 256);
  assert.equal(parseClusterFile(`clusterCIDR: 10.244.0.0/15\n${nodes(300)}`, 'c.yaml').nodes.length, 300);
  assert.throws(() => parseClusterFile(`clusterCIDR: 10.244.0.0/15,fd00:10:244::/56\n${nodes(300)}`, 'c.yaml'),
    /nodes: 300 nodes, but clusterCIDR "fd00:10:244::\/56" cut into \/64s holds only 256 node pod CIDRs$/);
  assert.equal(parseClusterFile('maxPods: 20\n', 'c.yaml').maxPods, 20);
  assert.throws(() => parseClusterFile('maxPods: 0\n', 'c.yaml'), /c\.yaml: maxPods: 0 must be an integer between 1 and 1000/);
});

test('a dual-stack cluster file: IPv4 then IPv6 CIDR (string or list); every host gets its IPv4 address\'s twin in fdf0::/96', () => {
  const c = parseClusterFile('clusterCIDR: 10.244.0.0/16,fd00:10:244::/56\n', 'c.yaml');
  assert.equal(c.clusterCIDR, '10.244.0.0/16,fd00:10:244::/56');
  assert.equal(parseClusterFile('clusterCIDR: [10.244.0.0/16, "fd00:10:244::/56"]\n', 'c.yaml').clusterCIDR, '10.244.0.0/16,fd00:10:244::/56');
  const plan = planTopology('lab1', c);
  assert.deepEqual(plan.nodes.map((n) => `${n.name} ${n.ip} ${n.ip6}`), ['node-1 10.100.0.11 fdf0::a64:b', 'node-2 10.100.0.12 fdf0::a64:c', 'node-3 10.100.1.11 fdf0::a64:10b']);
  assert.deepEqual(plan.external, { netns: 'lab1-ext', ip: '203.0.113.10', ip6: 'fdf0::cb00:710a' });
  const n3 = plan.ports.find((p) => p.netns === 'lab1-n-node-3')!;
  assert.deepEqual([n3.addr6, n3.gateway6], ['fdf0::a64:10b/120', 'fdf0::a64:101']);
  assert.deepEqual(plan.ports.filter((p) => p.netns === 'lab1-router').map((p) => p.addr6), ['fdf0::a64:1/120', 'fdf0::a64:101/120', 'fdf0::cb00:7101/120']);
  // Single stack stays IPv4 only.
  assert.ok(planTopology('lab1', defaultCluster()).ports.every((p) => p.addr6 === undefined));
  const bad: Array<[string, RegExp]> = [
    ['clusterCIDR: "fd00:10:244::/56"\n', /clusterCIDR: "fd00:10:244::\/56" starts with IPv6; the lab's cluster needs IPv4 first/],
    ['clusterCIDR: 10.244.0.0/16,10.245.0.0/16\n', /clusterCIDR: "10\.245\.0\.0\/16" is not IPv6/],
    ['clusterCIDR: 10.244.0.0/16,fd00:10:244::1/56\n', /clusterCIDR: "fd00:10:244::1\/56" has host bits set \(did you mean fd00:10:244::\/56\?\)/],
    ['clusterCIDR: 10.244.0.0/16,fd00:10:244::/80\n', /clusterCIDR: "fd00:10:244::\/80" is smaller than one node's \/64/],
    ['clusterCIDR: 10.244.0.0/16,fdf0::/64\n', /clusterCIDR: "fdf0::\/64" overlaps the node network's IPv6 addresses fdf0::\/96/],
    ['clusterCIDR: 10.244.0.0/16,fd00::/56,fd01::/56\n', /clusterCIDR: ".*" names 3 CIDRs; at most one IPv4 and one IPv6/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseClusterFile(text, 'c.yaml'), re, text);
});
