// The dataplane's pure decisions: which routes, VTEP entries and masquerade rules a node wants, and
// which kernel changes turn what it has into that (none when it already has it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRouteChanges, podMTU, renderRoutes, vtepMac, type CurrentRoutes, type RouteInputs } from '../../src/dataplane/routes/index.js';
import { renderMasq } from '../../src/dataplane/masq/index.js';

const inputs = (backend: RouteInputs['backend']): RouteInputs => ({
  self: { name: 'node-1', nodeIP: '10.100.0.11', podCIDRs: ['10.244.0.0/24'], ready: true, underlay: { ifname: 'eth0', cidr: '10.100.0.11/24', mtu: 1500 } },
  peers: [
    { name: 'node-2', nodeIP: '10.100.0.12', podCIDRs: ['10.244.1.0/24'], ready: true },
    { name: 'node-3', nodeIP: '10.100.1.11', podCIDRs: ['10.244.2.0/24'], ready: true },
    { name: 'node-5', nodeIP: '10.100.0.14', podCIDRs: [], ready: true },
  ],
  backend,
  vxlan: { vni: 1, port: 8472 },
});

test('host-gw: a route via each adjacent peer; a peer behind a router is reported unreachable', () => {
  const d = renderRoutes(inputs('host-gw'));
  assert.equal(d.vtep, undefined);
  assert.deepEqual(d.routes.map((r) => `${r.dst} via ${r.via} dev ${r.dev}`), ['10.244.1.0/24 via 10.100.0.12 dev eth0']);
  assert.deepEqual(d.unreachable.map((u) => u.peer), ['node-3']);
  assert.match(d.unreachable[0].reason, /host-gw needs 10\.100\.1\.11 on this node's segment 10\.100\.0\.11\/24/);
});

test('vxlan: a VTEP with MTU −50 and, per peer, a permanent neighbour, an FDB entry and an onlink route with the node IP as source', () => {
  const d = renderRoutes(inputs('vxlan'));
  assert.deepEqual(d.vtep, { name: 'flatnet.1', vni: 1, port: 8472, local: '10.100.0.11', dev: 'eth0', mac: '0e:66:0a:64:00:0b', mtu: 1450, addrs: ['10.244.0.0/32'] });
  assert.deepEqual(d.neighbors, [
    { ip: '10.244.1.0', mac: vtepMac('10.100.0.12'), dev: 'flatnet.1' },
    { ip: '10.244.2.0', mac: vtepMac('10.100.1.11'), dev: 'flatnet.1' },
  ]);
  assert.deepEqual(d.fdb.map((f) => `${f.mac} ${f.dst}`), ['0e:66:0a:64:00:0c 10.100.0.12', '0e:66:0a:64:01:0b 10.100.1.11']);
  assert.deepEqual(d.routes.map((r) => `${r.dst} via ${r.via} dev ${r.dev} onlink=${r.onlink} src ${r.src}`), [
    '10.244.1.0/24 via 10.244.1.0 dev flatnet.1 onlink=true src 10.100.0.11',
    '10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink=true src 10.100.0.11',
  ]);
  assert.equal(podMTU(1500, 'vxlan'), 1450);
  assert.equal(podMTU(1500, 'auto'), 1450);
  assert.equal(podMTU(1500, 'host-gw'), 1500);
});

test('auto: direct routes on the segment, VXLAN across the router', () => {
  const d = renderRoutes(inputs('auto'));
  assert.deepEqual(d.routes.map((r) => `${r.peer} ${r.dev}`), ['node-2 eth0', 'node-3 flatnet.1']);
  assert.deepEqual(d.fdb.map((f) => f.dst), ['10.100.1.11']);
  assert.deepEqual(d.unreachable, []);
});

test('a NotReady peer (heartbeat lapsed, Node still there) keeps its route, neighbour and FDB entry', () => {
  for (const backend of ['host-gw', 'vxlan'] as const) {
    const inp = inputs(backend);
    const withReady = renderRoutes(inp);
    inp.peers = inp.peers.map((p) => (p.name === 'node-2' ? { ...p, ready: false } : p));
    assert.deepEqual(renderRoutes(inp), withReady, backend);
    assert.ok(withReady.routes.some((r) => r.peer === 'node-2'), backend);
  }
});

/** The kernel state that exactly matches `want`, as readRoutes would return it. */
function currentOf(inp: RouteInputs): CurrentRoutes {
  const d = renderRoutes(inp);
  return {
    vtep: d.vtep && { vni: d.vtep.vni, port: d.vtep.port, local: d.vtep.local, dev: d.vtep.dev, mac: d.vtep.mac, mtu: d.vtep.mtu, up: true, addrs: d.vtep.addrs },
    routes: d.routes.map((r) => ({ dst: r.dst, via: r.via, dev: r.dev, onlink: r.onlink, src: r.src })),
    neighbors: d.neighbors.map((n) => ({ ip: n.ip, mac: n.mac, permanent: true })),
    fdb: d.fdb.map((f) => ({ mac: f.mac, dst: f.dst })),
  };
}

test('planRouteChanges: nothing to do when the kernel already matches; only the difference otherwise', () => {
  for (const b of ['host-gw', 'vxlan', 'auto'] as const) {
    assert.deepEqual(planRouteChanges(renderRoutes(inputs(b)), currentOf(inputs(b))), { ip: [], bridge: [] }, b);
  }
  const fresh = planRouteChanges(renderRoutes(inputs('auto')), { routes: [], neighbors: [], fdb: [] });
  assert.deepEqual(fresh.ip, [
    'link add flatnet.1 address 0e:66:0a:64:00:0b mtu 1450 type vxlan id 1 local 10.100.0.11 dev eth0 dstport 8472 nolearning',
    'addr replace 10.244.0.0/32 dev flatnet.1',
    'link set flatnet.1 up',
    'neigh replace 10.244.2.0 lladdr 0e:66:0a:64:01:0b dev flatnet.1 nud permanent',
    'route replace 10.244.1.0/24 via 10.100.0.12 dev eth0 proto 77',
    'route replace 10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink src 10.100.0.11 proto 77',
  ]);
  assert.deepEqual(fresh.bridge, ['fdb replace 0e:66:0a:64:01:0b dev flatnet.1 dst 10.100.1.11 self permanent']);

  // node-2 goes away: its route and nothing else is withdrawn.
  const gone = inputs('auto');
  gone.peers = gone.peers.filter((p) => p.name !== 'node-2');
  assert.deepEqual(planRouteChanges(renderRoutes(gone), currentOf(inputs('auto'))), { ip: ['route del 10.244.1.0/24 proto 77'], bridge: [] });

  // Switching to host-gw removes the VTEP (its neighbours, FDB entries and routes go with the device).
  const toHostGw = planRouteChanges(renderRoutes(inputs('host-gw')), currentOf(inputs('auto')));
  assert.deepEqual(toHostGw.ip, ['route del 10.244.2.0/24 proto 77', 'link del flatnet.1']);
});

test('planRouteChanges: a VTEP with the wrong VNI is recreated and every route through it re-added', () => {
  const cur = currentOf(inputs('vxlan'));
  cur.vtep!.vni = 7;
  const c = planRouteChanges(renderRoutes(inputs('vxlan')), cur);
  assert.equal(c.ip[0], 'link del flatnet.1');
  assert.match(c.ip[1], /^link add flatnet\.1 .* id 1 /);
  assert.equal(c.ip.filter((l) => l.startsWith('route replace')).length, 2);
  assert.equal(c.bridge.length, 2);
});

test('renderMasq: pods leaving the cluster CIDRs are masqueraded; pod→pod is not; written as nft prints it', () => {
  assert.equal(renderMasq({ podCIDRs: ['10.244.1.0/24'], clusterCIDRs: ['10.244.0.0/16'] }), [
    'table ip flatnet-masq {',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\tip saddr 10.244.1.0/24 ip daddr != 10.244.0.0/16 masquerade',
    '\t}',
    '}',
    '',
  ].join('\n'));
  const dual = renderMasq({ podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], clusterCIDRs: ['10.244.0.0/16', '10.96.0.0/12', 'fd00:10:244::/56'] });
  assert.match(dual, /ip daddr != \{ 10\.96\.0\.0\/12, 10\.244\.0\.0\/16 \} masquerade/);
  assert.match(dual, /table ip6 flatnet-masq[\s\S]*ip6 saddr fd00:10:244:1::\/64 ip6 daddr != fd00:10:244::\/56 masquerade/);
  assert.equal(renderMasq({ podCIDRs: [], clusterCIDRs: ['10.244.0.0/16'] }), '');
});

/** A dual-stack cluster: node-2 beside node-1 on both segments' families, node-3 behind the router, node-6 beside it without IPv6. */
const dual = (backend: RouteInputs['backend']): RouteInputs => ({
  self: { name: 'node-1', nodeIP: '10.100.0.11', nodeIPv6: 'fdf0::a64:b', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'], ready: true,
    underlay: { ifname: 'eth0', cidr: '10.100.0.11/24', cidr6: 'fdf0::a64:b/120', mtu: 1500 } },
  peers: [
    { name: 'node-2', nodeIP: '10.100.0.12', nodeIPv6: 'fdf0::a64:c', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], ready: true },
    { name: 'node-3', nodeIP: '10.100.1.11', nodeIPv6: 'fdf0::a64:10b', podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'], ready: true },
    { name: 'node-6', nodeIP: '10.100.0.16', podCIDRs: ['10.244.5.0/24', 'fd00:10:244:5::/64'], ready: true },
  ],
  backend,
  vxlan: { vni: 1, port: 8472 },
});

const fresh = (inp: RouteInputs) => {
  const c = planRouteChanges(renderRoutes(inp), { routes: [], neighbors: [], fdb: [] });
  return [...c.ip, ...c.bridge.map((l) => `bridge ${l}`)];
};

test('dual stack, host-gw: each family via the peer\'s node address of that family; a peer without IPv6 is unreachable over IPv6 and says why', () => {
  const d = renderRoutes(dual('host-gw'));
  assert.deepEqual(fresh(dual('host-gw')), [
    'route replace 10.244.1.0/24 via 10.100.0.12 dev eth0 proto 77',
    'route replace fd00:10:244:1::/64 via fdf0::a64:c dev eth0 proto 77',
    'route replace 10.244.5.0/24 via 10.100.0.16 dev eth0 proto 77',
  ]);
  assert.deepEqual(d.unreachable.map((u) => `${u.peer}: ${u.reason}`), [
    'node-3: host-gw needs 10.100.1.11 on this node\'s segment 10.100.0.11/24; no route to 10.244.2.0/24',
    'node-3: host-gw needs fdf0::a64:10b on this node\'s IPv6 segment fdf0::a64:b/120; no route to fd00:10:244:2::/64',
    'node-6: host-gw needs an IPv6 node address (it has none) on this node\'s IPv6 segment fdf0::a64:b/120; no route to fd00:10:244:5::/64',
  ]);
});

test('dual stack, vxlan: one VTEP over IPv4 carries both families: an address, a neighbour and an onlink route per family, one FDB entry per peer', () => {
  assert.deepEqual(fresh(dual('vxlan')), [
    'link add flatnet.1 address 0e:66:0a:64:00:0b mtu 1450 type vxlan id 1 local 10.100.0.11 dev eth0 dstport 8472 nolearning',
    'addr replace 10.244.0.0/32 dev flatnet.1',
    'addr replace fd00:10:244::/128 dev flatnet.1 nodad',
    'link set flatnet.1 up',
    'neigh replace 10.244.1.0 lladdr 0e:66:0a:64:00:0c dev flatnet.1 nud permanent',
    'neigh replace fd00:10:244:1:: lladdr 0e:66:0a:64:00:0c dev flatnet.1 nud permanent',
    'neigh replace 10.244.2.0 lladdr 0e:66:0a:64:01:0b dev flatnet.1 nud permanent',
    'neigh replace fd00:10:244:2:: lladdr 0e:66:0a:64:01:0b dev flatnet.1 nud permanent',
    'neigh replace 10.244.5.0 lladdr 0e:66:0a:64:00:10 dev flatnet.1 nud permanent',
    'neigh replace fd00:10:244:5:: lladdr 0e:66:0a:64:00:10 dev flatnet.1 nud permanent',
    'route replace 10.244.1.0/24 via 10.244.1.0 dev flatnet.1 onlink src 10.100.0.11 proto 77',
    'route replace fd00:10:244:1::/64 via fd00:10:244:1:: dev flatnet.1 onlink src fdf0::a64:b proto 77',
    'route replace 10.244.2.0/24 via 10.244.2.0 dev flatnet.1 onlink src 10.100.0.11 proto 77',
    'route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev flatnet.1 onlink src fdf0::a64:b proto 77',
    'route replace 10.244.5.0/24 via 10.244.5.0 dev flatnet.1 onlink src 10.100.0.11 proto 77',
    'route replace fd00:10:244:5::/64 via fd00:10:244:5:: dev flatnet.1 onlink src fdf0::a64:b proto 77',
    'bridge fdb replace 0e:66:0a:64:00:0c dev flatnet.1 dst 10.100.0.12 self permanent',
    'bridge fdb replace 0e:66:0a:64:01:0b dev flatnet.1 dst 10.100.1.11 self permanent',
    'bridge fdb replace 0e:66:0a:64:00:10 dev flatnet.1 dst 10.100.0.16 self permanent',
  ]);
  assert.deepEqual(renderRoutes(dual('vxlan')).unreachable, []);
});

test('dual stack, auto: per family, direct on the shared segment, VXLAN otherwise (IPv6 to a peer without an IPv6 node address too)', () => {
  const d = renderRoutes(dual('auto'));
  assert.deepEqual(d.routes.map((r) => `${r.peer} ${r.dst} ${r.dev}`), [
    'node-2 10.244.1.0/24 eth0',
    'node-2 fd00:10:244:1::/64 eth0',
    'node-3 10.244.2.0/24 flatnet.1',
    'node-3 fd00:10:244:2::/64 flatnet.1',
    'node-6 10.244.5.0/24 eth0',
    'node-6 fd00:10:244:5::/64 flatnet.1',
  ]);
  assert.deepEqual(d.fdb.map((f) => f.dst), ['10.100.1.11', '10.100.0.16']);
  assert.deepEqual(d.neighbors.map((n) => n.ip), ['10.244.2.0', 'fd00:10:244:2::', 'fd00:10:244:5::']);
  assert.deepEqual(d.unreachable, []);
});

test('dual stack: nothing to change writes nothing, in every backend; a withdrawn IPv6 route is deleted alone', () => {
  for (const b of ['host-gw', 'vxlan', 'auto'] as const) {
    assert.deepEqual(planRouteChanges(renderRoutes(dual(b)), currentOf(dual(b))), { ip: [], bridge: [] }, b);
  }
  const v4only = dual('auto');
  v4only.peers = v4only.peers.map((p) => (p.name === 'node-2' ? { ...p, podCIDRs: ['10.244.1.0/24'] } : p));
  assert.deepEqual(planRouteChanges(renderRoutes(v4only), currentOf(dual('auto'))), { ip: ['route del fd00:10:244:1::/64 proto 77'], bridge: [] });
  // A single-stack node keeps exactly the IPv4 VTEP it had.
  assert.deepEqual(renderRoutes(inputs('vxlan')).vtep?.addrs, ['10.244.0.0/32']);
});
