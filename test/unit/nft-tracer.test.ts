// The packet tracer over rendered tables: the proxy's own skeleton and elements (ClusterIP DNAT, a
// Service without endpoints, a NodePort), a policy table in the team brief's shape (isolation, port
// sets, named ports, ranges, replies, ICMP, egress then ingress on one node), and policy after DNAT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeNft } from '../../src/dataplane/nft/fake.js';
import { TraceError, parsePriority, traceNft, type TracePacket, type TraceResult } from '../../src/dataplane/nft/tracer.js';
import { PROXY_MAPS, renderProxy } from '../../src/dataplane/proxy/render.js';
import { renderSkeleton } from '../../src/dataplane/proxy/skeleton.js';
import { renderGuardSkeleton } from '../../src/dataplane/guard/render.js';
import type { EndpointSlice, Service } from '../../src/api/types.js';

const NODE_IP = '10.100.0.11';

function svc(name: string, clusterIP: string, spec: Partial<Service['spec']> = {}): Service {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', clusterIP, ports: [{ protocol: 'TCP', port: 80, targetPort: 8080 }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', selector: { app: name }, ...spec },
  };
}

function slice(service: string, eps: Array<[string, string]>, protocol: 'TCP' | 'UDP' = 'TCP', port = 8080): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ name: '', protocol, port }],
    metadata: { name: `${service}-abcde`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    endpoints: eps.map(([ip, node]) => ({ addresses: [ip], nodeName: node, conditions: { ready: true, serving: true, terminating: false } })),
  };
}

/** The proxy table as the kernel would list it after the applier's first sync on node-1. */
async function proxyTable(): Promise<string> {
  const plan = renderProxy({
    nodeName: 'node-1', nodeIPs: [NODE_IP],
    services: [
      svc('web', '10.96.0.10'),
      svc('empty', '10.96.0.11'),
      svc('np', '10.96.0.12', { type: 'NodePort', externalTrafficPolicy: 'Cluster', ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }] }),
      svc('dns', '10.96.0.13', { ports: [{ protocol: 'UDP', port: 53, targetPort: 53 }] }),
    ],
    slices: [slice('web', [['10.244.1.5', 'node-1'], ['10.244.2.5', 'node-2']]), slice('empty', []), slice('np', [['10.244.2.7', 'node-2']]), slice('dns', [], 'UDP', 53)],
  });
  const script = [renderSkeleton({ maxCount: 2, affinityTimeouts: [], clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12' })];
  for (const m of PROXY_MAPS) {
    const items = [...plan.elements[m]].map(([k, v]) => (v ? `${k} : ${v}` : k));
    if (items.length) script.push(`add element ip flatnet-proxy ${m} { ${items.join(', ')} }`);
  }
  const fake = new FakeNft();
  await fake.apply(script.join('\n'));
  return (await fake.listTable('ip', 'flatnet-proxy'))!;
}

// The brief's policy table: A (.5) isolated for ingress by deny-all and allow-web, C (.7) by deny-all
// alone, D (.8) by allow-ping (peers, no ports), B (.6) isolated for egress: to A on tcp/80 only.
const POLICY = `table inet flatnet-policy {
	map ingress { type ipv4_addr : verdict; }
	map egress { type ipv4_addr : verdict; }
	set a-00000001 { type ipv4_addr; flags interval; }
	set p-00000001 { type inet_proto . inet_service; flags interval; }
	set n-00000001 { type ipv4_addr . inet_proto . inet_service; flags interval; }
	set a-00000002 { type ipv4_addr; flags interval; }
	set p-00000002 { type inet_proto . inet_service; flags interval; }
	set a-00000003 { type ipv4_addr; flags interval; }
	chain forward-egress { type filter hook forward priority filter; policy accept;
		ct state established,related accept
		ip saddr vmap @egress
	}
	chain input-egress { type filter hook input priority filter; policy accept;
		ct state established,related accept
		ip saddr vmap @egress
	}
	chain forward-ingress { type filter hook forward priority filter + 10; policy accept;
		ct state established,related accept
		ip daddr vmap @ingress
	}
	chain pi-00000001 {
		ip saddr @a-00000001 meta l4proto . th dport @p-00000001 accept comment "x/allow-web ingress 0"
		ip saddr @a-00000001 ip daddr . meta l4proto . th dport @n-00000001 accept comment "x/allow-web ingress 0"
	}
	chain pi-00000003 { ip saddr @a-00000003 accept comment "x/allow-ping ingress 0"; }
	chain ig-00000001 {
		jump pi-00000001
		drop comment "ingress isolated by x/deny-all, x/allow-web"
	}
	chain ig-00000002 { drop comment "ingress isolated by x/deny-all"; }
	chain ig-00000003 { jump pi-00000003; drop comment "ingress isolated by x/allow-ping"; }
	chain pe-00000002 { ip daddr @a-00000002 meta l4proto . th dport @p-00000002 accept comment "x/web-client egress 0"; }
	chain eg-00000002 { jump pe-00000002; drop comment "egress isolated by x/web-client"; }
}
add element inet flatnet-policy ingress { 10.244.1.5 : goto ig-00000001, 10.244.1.7 : goto ig-00000002, 10.244.1.8 : goto ig-00000003 }
add element inet flatnet-policy egress { 10.244.1.6 : goto eg-00000002 }
add element inet flatnet-policy a-00000001 { 10.244.1.6, 10.244.2.0/24 }
add element inet flatnet-policy p-00000001 { tcp . 80, tcp . 8000-8100, udp . 53 }
add element inet flatnet-policy n-00000001 { 10.244.1.5 . tcp . 8443 }
add element inet flatnet-policy a-00000002 { 10.244.1.5 }
add element inet flatnet-policy p-00000002 { tcp . 80 }
add element inet flatnet-policy a-00000003 { 10.244.0.0/16 }
`;

const pkt = (p: Partial<TracePacket>): TracePacket => ({ family: 4, hook: 'forward', saddr: '10.244.2.9', daddr: '10.244.1.5', protocol: 'tcp', sport: 40000, dport: 80, ctState: 'new', local: [NODE_IP], ...p });
/** The step that gave a verdict last: the one a reader of `policy explain` wants. */
const last = (r: TraceResult) => r.path.filter((s) => s.rule !== '').at(-1)!;
const chainsMet = (r: TraceResult) => [...new Set(r.path.map((s) => `${s.hook} ${s.chain}`))];

test('ClusterIP: DNAT to the endpoint numgen picks, then forward; no masquerade for a pod, masquerade for the node', async () => {
  const proxy = await proxyTable();
  for (const [pick, ip] of [[0, '10.244.1.5'], [1, '10.244.2.5'], [3, '10.244.2.5']] as const) {
    const r = traceNft([proxy], pkt({ daddr: '10.96.0.10', pick }));
    assert.equal(r.verdict, 'accept');
    assert.deepEqual([r.packet.daddr, r.packet.dport, r.packet.masquerade], [ip, 8080, false]);
    const dnat = r.path.find((s) => s.did.startsWith('dnat'))!;
    assert.deepEqual([dnat.hook, dnat.chain, dnat.did], ['prerouting', 'pick-2', `dnat to ${ip}:8080`]);
  }
  assert.deepEqual(chainsMet(traceNft([proxy], pkt({ daddr: '10.96.0.10' }))),
    ['prerouting nat-prerouting', 'prerouting service-dnat', 'prerouting pick-2', 'forward filter-forward', 'forward check-endpoints', 'postrouting nat-postrouting']);
  const fromNode = traceNft([proxy], pkt({ hook: 'output', saddr: NODE_IP, daddr: '10.96.0.10' }));
  assert.equal(fromNode.path[0].chain, 'nat-output');
  assert.equal(fromNode.packet.masquerade, true, 'not from a pod: masqueraded so the reply comes back through us');
  const hairpin = traceNft([proxy], pkt({ saddr: '10.244.1.5', daddr: '10.96.0.10', pick: 0 }));
  assert.equal(hairpin.packet.masquerade, true, 'a pod sent to itself');
  assert.match(last(hairpin).rule, /@hairpin masquerade/);
});

test('a Service without endpoints is refused: a TCP reset, an ICMP error for UDP', async () => {
  const proxy = await proxyTable();
  const tcp = traceNft([proxy], pkt({ daddr: '10.96.0.11' }));
  assert.equal(tcp.verdict, 'drop');
  assert.equal(tcp.packet.daddr, '10.96.0.11', 'no DNAT');
  assert.deepEqual([last(tcp).chain, last(tcp).did], ['refuse', 'reject with tcp reset']);
  assert.ok(tcp.path.some((s) => s.chain === 'check-endpoints' && s.did.startsWith('goto refuse')));
  const udp = traceNft([proxy], pkt({ daddr: '10.96.0.13', protocol: 'udp', dport: 53 }));
  assert.deepEqual([udp.verdict, last(udp).did], ['drop', 'reject']);
  // A reply of an existing connection meets no nat chain and no endpoint check.
  const reply = traceNft([proxy], pkt({ daddr: '10.96.0.11', ctState: 'established' }));
  assert.equal(reply.verdict, 'accept');
  assert.ok(reply.path.some((s) => s.did.startsWith('skipped: nat chains')));
});

test('NodePort: to the node address, marked, DNAT to the endpoint, forwarded, masqueraded', async () => {
  const proxy = await proxyTable();
  const r = traceNft([proxy], pkt({ hook: 'input', saddr: '192.168.0.50', daddr: NODE_IP, dport: 30080 }));
  assert.equal(r.verdict, 'accept');
  assert.deepEqual([r.packet.daddr, r.packet.dport, r.packet.mark, r.packet.masquerade], ['10.244.2.7', 8080, 0x4000, true]);
  assert.ok(chainsMet(r).includes('forward filter-forward'), 'DNAT to another host: forwarded, not delivered');
  assert.ok(r.path.some((s) => s.chain === 'np-pick-1' && s.did === 'dnat to 10.244.2.7:8080'));
  const wrongPort = traceNft([proxy], pkt({ hook: 'input', saddr: '192.168.0.50', daddr: NODE_IP, dport: 30081 }));
  assert.deepEqual([wrongPort.verdict, wrongPort.packet.daddr, chainsMet(wrongPort).at(-1)], ['accept', NODE_IP, 'input check-endpoints']);
});

test('policy: an isolated pod is dropped; allowed by the port set, a range, a named port; peers outside are dropped', () => {
  const t = (p: Partial<TracePacket>) => traceNft([POLICY], pkt(p));
  const denied = t({ daddr: '10.244.1.7' });
  assert.deepEqual([denied.verdict, last(denied).comment], ['drop', 'ingress isolated by x/deny-all']);
  const web = t({ dport: 80 });
  assert.deepEqual([web.verdict, last(web).comment], ['accept', 'x/allow-web ingress 0']);
  assert.match(last(web).rule, /@p-00000001 accept/);
  assert.equal(t({ dport: 8050 }).verdict, 'accept', 'in 8000-8100');
  assert.equal(t({ dport: 8100 }).verdict, 'accept', 'endPort is inclusive');
  assert.equal(t({ dport: 8101 }).verdict, 'drop');
  assert.equal(t({ dport: 7999 }).verdict, 'drop');
  assert.equal(t({ protocol: 'udp', dport: 80 }).verdict, 'drop', 'tcp/80 is no udp/80');
  const named = t({ dport: 8443 });
  assert.equal(named.verdict, 'accept');
  assert.match(last(named).rule, /ip daddr \. meta l4proto \. th dport @n-00000001 accept/);
  assert.equal(t({ protocol: 'udp', dport: 8443 }).verdict, 'drop');
  assert.equal(t({ saddr: '10.245.0.1' }).verdict, 'drop', 'not a peer');
  assert.equal(t({ daddr: '10.244.3.3' }).verdict, 'accept', 'a pod no policy isolates');
});

test('policy: replies pass; ICMP never matches a rule with ports, but a rule without ports lets it in', () => {
  const t = (p: Partial<TracePacket>) => traceNft([POLICY], pkt(p));
  const reply = t({ daddr: '10.244.1.7', ctState: 'established' });
  assert.deepEqual([reply.verdict, last(reply).rule], ['accept', 'ct state established,related accept']);
  assert.equal(t({ daddr: '10.244.1.7', ctState: 'related', protocol: 'icmp', dport: undefined }).verdict, 'accept');
  const ping = { protocol: 'icmp', sport: undefined, dport: undefined } as const;
  assert.equal(t({ ...ping }).verdict, 'drop', 'A allows only ports');
  const toD = t({ ...ping, daddr: '10.244.1.8' });
  assert.deepEqual([toD.verdict, last(toD).comment], ['accept', 'x/allow-ping ingress 0']);
  assert.equal(t({ daddr: '10.244.1.8', dport: 5432 }).verdict, 'accept', 'no ports: every port');
  assert.equal(t({ daddr: '10.244.1.8', saddr: '10.1.0.1' }).verdict, 'drop', 'outside the peer range');
});

test('policy: egress then ingress in one forward pass on one node; egress to the node itself judged at input', () => {
  const ok = traceNft([POLICY], pkt({ saddr: '10.244.1.6', dport: 80 }));
  assert.equal(ok.verdict, 'accept');
  assert.deepEqual(ok.path.filter((s) => s.did === 'accept').map((s) => `${s.hook} ${s.chain} ${s.comment}`),
    ['forward pe-00000002 x/web-client egress 0', 'forward pi-00000001 x/allow-web ingress 0']);
  const wrongPort = traceNft([POLICY], pkt({ saddr: '10.244.1.6', dport: 8050 }));
  assert.deepEqual([wrongPort.verdict, last(wrongPort).comment], ['drop', 'egress isolated by x/web-client'], 'ingress would allow it; egress does not');
  assert.ok(!wrongPort.path.some((s) => s.chain === 'forward-ingress'), 'dropped before ingress is looked at');
  const toNode = traceNft([POLICY], pkt({ saddr: '10.244.1.6', daddr: NODE_IP, dport: 22 }));
  assert.deepEqual([toNode.verdict, toNode.path[0].hook, toNode.path[0].chain], ['drop', 'input', 'input-egress']);
});

test('policy is judged after DNAT: a ClusterIP connection meets the backend pod\'s ingress on its target port', async () => {
  const proxy = await proxyTable();
  const peer = traceNft([proxy, POLICY], pkt({ daddr: '10.96.0.10', pick: 0 }));
  assert.deepEqual([peer.verdict, peer.packet.daddr, peer.packet.dport], ['accept', '10.244.1.5', 8080]);
  assert.ok(peer.path.some((s) => s.chain === 'pi-00000001' && s.did === 'accept' && /@p-00000001/.test(s.rule)), 'allowed by 8000-8100, not by 80');
  const stranger = traceNft([POLICY, proxy], pkt({ saddr: '10.245.0.1', daddr: '10.96.0.10', pick: 0 }));
  assert.equal(stranger.verdict, 'drop');
  // Priorities across tables: the proxy's filter - 10, then egress (filter), then ingress (filter + 10).
  const forward = chainsMet(peer).filter((c) => c.startsWith('forward ') && /-(forward|egress|ingress)$/.test(c));
  assert.deepEqual(forward, ['forward filter-forward', 'forward forward-egress', 'forward forward-ingress']);
  const v6 = traceNft([proxy, POLICY], pkt({ family: 6, saddr: 'fd00::1', daddr: 'fd00::2' }));
  assert.deepEqual([v6.verdict, v6.path.some((s) => s.table === 'ip flatnet-proxy')], ['accept', false], 'an ip table sees no IPv6');
});

test('dual stack: an IPv6 pod isolated through ingress6; neighbour discovery passes, a ping does not', () => {
  const v6 = `table inet flatnet-policy {
	map ingress6 { type ipv6_addr : verdict; }
	set a6-1 { type ipv6_addr; flags interval; }
	set p-1 { type inet_proto . inet_service; flags interval; }
	chain forward-ingress { type filter hook forward priority filter + 10; policy accept;
		ct state established,related accept
		icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept
		ip6 daddr vmap @ingress6
	}
	chain pi-1 { ip6 saddr @a6-1 meta l4proto . th dport @p-1 accept comment "x/web ingress 0"; }
	chain ig-1 { jump pi-1; drop comment "ingress isolated by x/web"; }
}
add element inet flatnet-policy ingress6 { fd00:10:244:1::5 : goto ig-1 }
add element inet flatnet-policy a6-1 { fd00:10:244::/48 }
add element inet flatnet-policy p-1 { tcp . 80 }
`;
  const t = (p: Partial<TracePacket>) => traceNft([v6, POLICY], pkt({ family: 6, saddr: 'fd00:10:244:2::9', daddr: 'fd00:10:244:1::5', ...p }));
  assert.deepEqual([t({}).verdict, last(t({})).comment], ['accept', 'x/web ingress 0']);
  assert.equal(t({ saddr: 'fd00:99::1' }).verdict, 'drop');
  const icmp = { protocol: 'icmp', sport: undefined, dport: undefined } as const;
  assert.equal(t({ ...icmp, icmpType: 'nd-neighbor-solicit' }).verdict, 'accept');
  assert.equal(t({ ...icmp }).verdict, 'drop', 'a ping (echo-request) to an isolated pod');
  assert.equal(traceNft([v6], pkt({ protocol: 'icmp', dport: undefined })).verdict, 'accept', 'IPv4 ICMP meets no icmpv6 rule');
});

test('the guard passes packets its rules do not match; a rule the tracer cannot evaluate is an error naming it', () => {
  const guard = renderGuardSkeleton({ podInterfaces: ['veth*'], vxlanPort: 8472 });
  const r = traceNft([guard, POLICY], pkt({ dport: 80 }));
  assert.equal(r.verdict, 'accept');
  assert.equal(r.path[0].chain, 'prerouting', 'raw (-300) first');
  assert.throws(() => traceNft([guard], pkt({ iifname: 'veth1234' })), (err: unknown) =>
    err instanceof TraceError && /inet flatnet-guard chain prerouting rule "iifname "veth\*" fib saddr \. iif oif missing drop"/.test(err.message));
  const odd = 'table inet x { chain c { type filter hook forward priority 0; policy accept; ip ttl 64 accept; } }';
  assert.throws(() => traceNft([odd], pkt({})), /rule "ip ttl 64 accept": .*a form the tracer does not know/);
  assert.throws(() => traceNft(['table inet x { chain c { jump nope; } }'], pkt({})), (err: unknown) => err instanceof TraceError && /nope/.test(err.message));
});

test('priorities: standard names, offsets and numbers', () => {
  assert.deepEqual(['filter + 10', 'filter - 10', 'dstnat', '-100', 'srcnat', 'raw', 'mangle', 'security', 'srcnat - 5'].map(parsePriority), [10, -10, -100, -100, 100, -300, -150, 50, 95]);
  assert.throws(() => parsePriority('sideways'), TraceError);
});

test('tcp flags under a mask: a connection\'s first SYN passes, a segment of no known connection is dropped', () => {
  const t = 'table inet x { chain c { type filter hook forward priority 0; policy accept; ct state new tcp flags != syn / fin,syn,rst,ack drop; } }';
  const base = { family: 4 as const, hook: 'forward' as const, saddr: '10.244.1.2', daddr: '10.244.2.2', protocol: 'tcp' as const, sport: 40000, dport: 80, ctState: 'new' as const };
  assert.equal(traceNft([t], base).verdict, 'accept');
  assert.equal(traceNft([t], { ...base, tcpFlags: ['syn', 'ecn'] }).verdict, 'accept', 'flags outside the mask do not count');
  assert.equal(traceNft([t], { ...base, tcpFlags: ['ack', 'psh'] }).verdict, 'drop');
  assert.equal(traceNft([t], { ...base, protocol: 'udp' }).verdict, 'accept', 'not TCP: the match fails');
});
