import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildResult, hostVethName, HOST_VETH_PATTERN, planAttachment } from '../../src/cni/plan.js';
import { renderMasqAdd, renderMasqDel } from '../../src/cni/masq.js';
import type { FlatnetConf } from '../../src/cni/config.js';
import type { Allocation } from '../../src/ipam/types.js';

const conf = (over: Partial<FlatnetConf> = {}): FlatnetConf => ({
  cniVersion: '1.0.0', name: 'pods', mode: 'bridge', bridge: 'cni0', mtu: 1450, hairpinMode: false, ipMasq: false,
  ipam: { rangeSets: [], routes: [{ dst: '0.0.0.0/0' }], dataDir: '/tmp/x' }, requestedIps: [], ...over,
});
const v4: Allocation = { address: '10.244.1.5/24', ip: '10.244.1.5', gateway: '10.244.1.1', version: 4, rangeSetIndex: 0, reused: false };
const v6: Allocation = { address: 'fd00::5/64', ip: 'fd00::5', gateway: 'fd00::1', version: 6, rangeSetIndex: 1, reused: false };
const a = { containerId: 'c1', ifname: 'eth0' };

test('host veth names are stable, distinct per attachment and fit IFNAMSIZ', () => {
  assert.equal(hostVethName(a), hostVethName({ ...a }));
  assert.notEqual(hostVethName(a), hostVethName({ containerId: 'c1', ifname: 'net1' }));
  assert.match(hostVethName(a), HOST_VETH_PATTERN);
  assert.ok(hostVethName(a).length <= 15);
});

test('the plan creates the peer inside the pod netns, never moving a link', () => {
  const p = planAttachment(conf(), a, '/run/netns/p1', [v4]);
  assert.equal(p.containerMac, '0a:58:0a:f4:01:05');
  assert.equal(p.bridgeMac, '0a:58:0a:f4:01:01');
  assert.deepEqual(p.nodeLines, [
    'link add cni0 address 0a:58:0a:f4:01:01 mtu 1450 type bridge',
    'link set cni0 up',
    'addr replace 10.244.1.1/24 dev cni0',
    `link add ${p.hostVeth} address ${p.hostMac} mtu 1450 type veth peer name eth0 address 0a:58:0a:f4:01:05 mtu 1450 netns /run/netns/p1`,
    `link set ${p.hostVeth} master cni0`,
    `link set ${p.hostVeth} up`,
  ]);
  assert.deepEqual(p.podLines, ['addr add 10.244.1.5/24 dev eth0', 'link set eth0 up', 'route add 0.0.0.0/0 via 10.244.1.1 dev eth0']);
  assert.ok(!p.nodeLines.some((l) => l.includes('set') && l.includes(' netns ')));
});

test('hairpin mode and dual stack add their lines', () => {
  const p = planAttachment(conf({ hairpinMode: true, ipam: { rangeSets: [], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], dataDir: '/x' } }), a, '/n', [v4, v6]);
  assert.ok(p.nodeLines.includes(`link set ${p.hostVeth} type bridge_slave hairpin on`));
  assert.ok(p.nodeLines.includes('addr replace fd00::1/64 dev cni0 nodad'));
  assert.ok(p.podLines.includes('addr add fd00::5/64 dev eth0 nodad'));
  assert.ok(p.podLines.includes('route add ::/0 via fd00::1 dev eth0'));
});

test('a route of a family with no range is refused up front', () => {
  assert.throws(() => planAttachment(conf({ ipam: { rangeSets: [], routes: [{ dst: '::/0' }], dataDir: '/x' } }), a, '/n', [v4]),
    (e: any) => e.code === 7 && /::\/0/.test(e.message));
});

test('the result lists bridge, host veth and the pod interface with its sandbox', () => {
  const c = conf();
  const p = planAttachment(c, a, '/run/netns/p1', [v4]);
  const r = buildResult(c, a, '/run/netns/p1', p, [v4], 'aa:bb:cc:dd:ee:ff');
  assert.deepEqual(r.interfaces?.map((i) => i.name), ['cni0', p.hostVeth, 'eth0']);
  assert.equal(r.interfaces?.[0].mac, 'aa:bb:cc:dd:ee:ff');
  assert.equal(r.interfaces?.[2].sandbox, '/run/netns/p1');
  assert.deepEqual(r.ips, [{ address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 }]);
});

test('with a prevResult ours are appended and interface indexes shift', () => {
  const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'lo', sandbox: '/n' }], ips: [{ address: '127.0.0.1/8', interface: 0 }], routes: [], dns: { nameservers: ['10.96.0.10'] } };
  const c = conf({ prevResult: prev });
  const p = planAttachment(c, a, '/n', [v4]);
  const r = buildResult(c, a, '/n', p, [v4], 'm');
  assert.equal(r.interfaces?.length, 4);
  assert.equal(r.ips?.[1].interface, 3);
  assert.deepEqual(r.dns, { nameservers: ['10.96.0.10'] });
});

test('masquerade: ADD adds elements to a fixed skeleton, DEL removes them idempotently', () => {
  const add = renderMasqAdd('cni0', [v4]);
  assert.match(add, /add element ip flatnet-cni masq_pods \{ 10\.244\.1\.5 \}/);
  assert.match(add, /ip saddr \. oifname != @pod_bridge masquerade/);
  const del = renderMasqDel('cni0', ['10.244.1.5']);
  assert.ok(del.indexOf('add element ip flatnet-cni masq_pods { 10.244.1.5 }') < del.indexOf('delete element ip flatnet-cni masq_pods { 10.244.1.5 }'));
});

test('routed mode: the veth without a bridge, a /32 route and permanent neighbours both ways; the result reports a /32', () => {
  const c = conf({ mode: 'routed' });
  const p = planAttachment(c, a, '/run/netns/p1', [v4]);
  const veth = hostVethName(a);
  assert.deepEqual(p.nodeLines, [
    `link add ${veth} address ${p.hostMac} mtu 1450 type veth peer name eth0 address 0a:58:0a:f4:01:05 mtu 1450 netns /run/netns/p1`,
    `link set ${veth} up`,
    `route replace 10.244.1.5/32 dev ${veth} scope link`,
    `neigh replace 10.244.1.5 lladdr 0a:58:0a:f4:01:05 dev ${veth} nud permanent`,
  ]);
  assert.deepEqual(p.podLines, [
    'addr add 10.244.1.5/32 dev eth0',
    `neigh replace 10.244.1.1 lladdr ${p.hostMac} dev eth0 nud permanent`,
    'link set eth0 up',
    'route add 10.244.1.1 dev eth0 scope link',
    'route add 0.0.0.0/0 via 10.244.1.1 dev eth0',
  ]);
  const r = buildResult(c, a, '/run/netns/p1', p, [v4], p.bridgeMac);
  assert.deepEqual(r.interfaces!.map((i) => i.name), [veth, 'eth0']);
  assert.deepEqual(r.ips, [{ address: '10.244.1.5/32', gateway: '10.244.1.1', interface: 1 }]);
});
