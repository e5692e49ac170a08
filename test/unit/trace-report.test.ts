// flatnet trace's pure parts: `nft monitor` trace lines typed, the trace table's script, and the report
// built from two nodes' events: hops in path order, the objects named, disagreements flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstTaggedPacket, parseTraceLine, type TraceEvent } from '../../src/trace/events.js';
import { armScript, tagMatch } from '../../src/trace/kernel.js';
import { parseTarget } from '../../src/trace/run.js';
import { buildReport, formatReport, type TraceRequest } from '../../src/trace/report.js';
import { namespace, pod, policy } from '../helpers/policy-objects.js';
import { node } from '../helpers/policy-gen.js';

const OWN = 'flatnet-trace-26000';
const pkt = (id: string, table: string, chain: string, rest: string) => `trace id ${id} ip ${table} ${chain} packet: ${rest} ip ttl 64 ip length 60 tcp sport 26000 tcp dport 8080 tcp flags == syn tcp window 64860 `;
const lines = (id: string, iif: string, oif: string, daddr: string, tail: string[]) => [
  pkt(id, OWN, 'pre', `iif "${iif}" ether saddr 0a:58:0a:f4:01:03 ip saddr 10.244.1.3 ip daddr ${daddr}`),
  `trace id ${id} ip ${OWN} pre policy accept `,
  `trace id ${id} inet flatnet-policy forward-ingress packet: iif "${iif}" oif "${oif}" ip saddr 10.244.1.3 ip daddr ${daddr} ip protocol tcp tcp sport 26000 tcp dport 8080 tcp flags == syn`,
  ...tail,
];

test('a trace line is typed: packet fields, rule text without its verdict, comment, chain policy; other lines are not', () => {
  const rule = parseTraceLine('trace id 283f8861 inet flatnet-policy ig-e15c152fffe4 rule drop comment "ingress isolated by default/web-2-only-friends" (verdict drop)');
  assert.deepEqual(rule, { id: '283f8861', family: 'inet', table: 'flatnet-policy', chain: 'ig-e15c152fffe4', kind: 'rule', rule: 'drop comment "ingress isolated by default/web-2-only-friends"', verdict: 'drop', comment: 'ingress isolated by default/web-2-only-friends' });
  const p = parseTraceLine(pkt('1', OWN, 'pre', 'iif "fna7" ip saddr 10.244.1.3 ip daddr 10.96.0.50'));
  assert.deepEqual(p?.packet, { iif: 'fna7', saddr: '10.244.1.3', daddr: '10.96.0.50', protocol: 'tcp', sport: 26000, dport: 8080 });
  assert.equal(parseTraceLine('trace id 1 ip flatnet-proxy nat-prerouting policy accept ')?.verdict, 'accept');
  assert.equal(parseTraceLine('add table ip flatnet-trace-1'), undefined);
});

test('only the first tagged packet counts: its trace id, without the trace table\'s own events', () => {
  const evs = [...lines('a', 'fn1', 'eth0', '10.244.2.2', []), ...lines('b', 'fn1', 'eth0', '10.244.2.2', [])].map(parseTraceLine).filter((e): e is TraceEvent => !!e);
  const first = firstTaggedPacket(evs, OWN);
  assert.ok(first.length > 0 && first.every((e) => e.id === 'a' && e.table !== OWN));
});

test('the trace table marks exactly the tag, before conntrack, for forwarded and local packets', () => {
  assert.equal(tagMatch('tcp', 26000), 'tcp sport 26000 tcp flags & (syn | ack) == syn');
  assert.equal(tagMatch('icmp', 7), 'icmp type echo-request icmp id 7');
  const script = armScript('udp', 26001);
  assert.match(script, /table ip flatnet-trace-26001/);
  assert.match(script, /hook prerouting priority -400;.*udp sport 26001 meta nftrace set 1/);
  assert.match(script, /hook output priority -400;.*udp sport 26001 meta nftrace set 1/);
  assert.deepEqual(parseTarget('svc/default/web:80/udp'), { end: 'svc/default/web', port: 80, protocol: 'udp' });
  assert.deepEqual(parseTarget('10.0.0.1/icmp'), { end: '10.0.0.1', protocol: 'icmp' });
});

const world = {
  namespaces: [namespace('default')],
  pods: [pod('default', 'c1', { node: 'node-1', ip: '10.244.1.3' }), pod('default', 'locked', { node: 'node-2', ip: '10.244.2.2', labels: { app: 'locked' } })],
  policies: [policy('default', 'locked-down', { podSelector: { matchLabels: { app: 'locked' } }, policyTypes: ['Ingress'], ingress: [] })],
  nodes: [node('node-1', '10.100.0.11'), node('node-2', '10.100.0.12')],
};
const req: TraceRequest = { from: { label: 'default/c1', address: '10.244.1.3', node: 'node-1' }, to: { label: 'default/locked', address: '10.244.2.2', node: 'node-2' }, port: 8080, protocol: 'tcp', tag: 26000 };
const events = (ls: string[]) => firstTaggedPacket(ls.map(parseTraceLine).filter((e): e is TraceEvent => !!e), OWN);
const node1 = { node: 'node-1', events: events(lines('a', 'fn1', 'eth0', '10.244.2.2', [])), route: { dst: '10.244.2.2', dev: 'eth0', gateway: '10.100.0.12' } };
const dropOn2 = events(lines('b', 'eth0', 'fn2', '10.244.2.2', [
  'trace id b inet flatnet-policy forward-ingress rule ip daddr vmap @ingress (verdict goto ig-1)',
  'trace id b inet flatnet-policy ig-1 rule drop comment "ingress isolated by default/locked-down" (verdict drop)',
]));

test('a policy drop: hops in path order, the drop names the policy, and the evaluator agrees', () => {
  const r = buildReport(req, [{ node: 'node-2', events: dropOn2 }, node1], { ok: false, detail: 'no answer (timeout)' }, { world, services: [], slices: [] });
  assert.deepEqual([...new Set(r.hops.map((h) => h.node))], ['node-1', 'node-2']);
  assert.equal(r.outcome, 'dropped');
  assert.match(r.droppedBy?.object ?? '', /^NetworkPolicy default\/locked-down: isolated/);
  assert.deepEqual(r.disagreements, []);
  const text = formatReport(r);
  assert.match(text, /node-1 {2}route 10\.244\.2\.2 via 10\.100\.0\.12 dev eth0: direct to node-2 on the segment/);
  assert.match(text, /expected: policy drops: isolated by default\/locked-down; no policy allows/);
});

test('a disagreement is flagged: the policy says drop but the packet went through; a route to the wrong node', () => {
  const through = events(lines('b', 'eth0', 'fn2', '10.244.2.2', []));
  const r = buildReport(req, [node1, { node: 'node-2', events: through }], { ok: true, detail: 'connected' }, { world, services: [], slices: [] });
  assert.equal(r.outcome, 'delivered');
  assert.ok(r.disagreements.some((d) => /policy should drop it, but it went through/.test(d)), r.disagreements.join('\n'));
  const open = { ...world, policies: [] };
  const stale = { ...node1, route: { dst: '10.244.2.2', dev: 'eth0', gateway: '10.100.0.99' } };
  const r2 = buildReport(req, [stale], { ok: false, detail: 'no answer (timeout)' }, { world: open, services: [], slices: [] });
  assert.ok(r2.disagreements.some((d) => /never reached node-2/.test(d)), r2.disagreements.join('\n'));
});
