// The agent's pure decisions: the CNI config it writes, the bridge lines it needs, the node views routes come from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderConfList } from '../../src/agent/cni-config.js';
import { bridgeLines, gatewayOf } from '../../src/agent/bridge.js';
import { nodeViews } from '../../src/agent/views.js';
import { containerArgv } from '../../src/lab/kubelet.js';
import type { Node } from '../../src/api/types.js';

test('renderConfList: flatnet-cni on the node CIDRs, pod MTU, no per-pod masquerade, default routes per family', () => {
  const c = renderConfList({ podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'], mtu: 1450, dataDir: '/d/ipam', mode: 'bridge' }) as any;
  assert.equal(c.plugins[0].bridge, 'cni0');
  assert.equal(c.plugins[0].type, 'flatnet-cni');
  assert.equal(c.plugins[0].mtu, 1450);
  assert.equal(c.plugins[0].ipMasq, false);
  assert.deepEqual(c.plugins[0].ipam.ranges, [[{ subnet: '10.244.3.0/24' }], [{ subnet: 'fd00:10:244:3::/64' }]]);
  assert.deepEqual(c.plugins[0].ipam.routes, [{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
  const routed = renderConfList({ podCIDRs: ['10.244.3.0/24'], mtu: 1500, dataDir: '/d/ipam', mode: 'routed' }) as any;
  assert.equal(routed.plugins[0].mode, 'routed');
  assert.equal(routed.plugins[0].bridge, undefined);
});

test('gatewayOf: the first address of the CIDR, as the plugin IPAM picks it', () => {
  assert.deepEqual(gatewayOf('10.244.3.0/24'), { address: '10.244.3.1', prefix: 24, version: 4 });
  assert.deepEqual(gatewayOf('fd00::/64'), { address: 'fd00::1', prefix: 64, version: 6 });
});

test('bridgeLines: everything for a missing bridge, nothing for a right one, only the difference otherwise', () => {
  const fresh = bridgeLines('cni0', ['10.244.3.0/24'], 1450, undefined);
  assert.deepEqual(fresh, ['link add cni0 address 0a:58:0a:f4:03:01 mtu 1450 type bridge', 'addr replace 10.244.3.1/24 dev cni0', 'link set cni0 up']);
  const right = { ifname: 'cni0', mtu: 1450, address: '0a:58:0a:f4:03:01', operstate: 'UP', flags: ['UP'], addr_info: [{ local: '10.244.3.1', prefixlen: 24 }] };
  assert.deepEqual(bridgeLines('cni0', ['10.244.3.0/24'], 1450, right), []);
  assert.deepEqual(bridgeLines('cni0', ['10.244.3.0/24'], 1500, { ...right, flags: [] }), ['link set cni0 mtu 1500', 'link set cni0 up']);
});

test('nodeViews: nodes without an InternalIP are left out; ready follows the Node\'s Ready condition', () => {
  const node = (name: string, ip?: string, cidr?: string, ready?: 'True' | 'False'): Node => ({
    apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: cidr ? { podCIDR: cidr } : {},
    status: ip ? { addresses: [{ type: 'InternalIP', address: ip }], ...(ready ? { conditions: [{ type: 'Ready', status: ready }] } : {}) } : {},
  });
  const v = nodeViews([node('b', '10.0.0.2', '10.244.2.0/24', 'True'), node('a', '10.0.0.1', undefined, 'False'), node('c')]);
  assert.deepEqual(v, [
    { name: 'a', nodeIP: '10.0.0.1', podCIDRs: [], ready: false },
    { name: 'b', nodeIP: '10.0.0.2', podCIDRs: ['10.244.2.0/24'], ready: true },
  ]);
  // A dual-stack node: the IPv4 InternalIP is the node IP whatever the order, the IPv6 one rides along.
  const dual = node('d', 'fdf0::a00:4', '10.244.4.0/24');
  dual.status!.addresses!.push({ type: 'InternalIP', address: '10.0.0.4' });
  assert.deepEqual(nodeViews([dual]), [{ name: 'd', nodeIP: '10.0.0.4', nodeIPv6: 'fdf0::a00:4', podCIDRs: ['10.244.4.0/24'], ready: false }]);
});

test('containerArgv: command and args; without them the built-in server on the declared ports', () => {
  assert.deepEqual(containerArgv({ name: 'c', command: ['sh', '-c'], args: ['echo hi'] }), ['sh', '-c', 'echo hi']);
  assert.deepEqual(containerArgv({ name: 'c', ports: [{ containerPort: 80 }, { containerPort: 53, protocol: 'UDP' }] }),
    ['flatnet', 'serve', '--port', '80/tcp', '--port', '53/udp']);
  assert.deepEqual(containerArgv({ name: 'c' }), ['sleep', 'infinity']);
});
