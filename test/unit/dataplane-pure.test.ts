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
