// The pieces the evaluator shares with the nft renderer (ipBlock ranges, named ports, isolation), the
// Service DNAT step before judging, and the explain text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  afterDnat, evaluate, explainText, formatRange, indexWorld, ipBlockRanges, isolatingPolicies, mergeRanges, podAddresses,
  portMatches, portSpecKind, resolveNamedPort, rulePeerRanges, type Connection,
} from '../../src/policy/evaluate.js';
import type { EndpointSlice, Service } from '../../src/api/types.js';
import { node, ns, pod, policy, world } from '../helpers/policy-gen.js';

const ranges = (cidr: string, except?: string[]) => ipBlockRanges({ ipBlock: { cidr, except } }).map(formatRange);

test('ipBlockRanges: the cidr as its network, minus its excepts, as disjoint ranges in nft\'s printed form', () => {
  assert.deepEqual(ranges('10.0.0.0/8', ['10.1.0.0/16']), ['10.0.0.0/16', '10.2.0.0-10.255.255.255']);
  assert.deepEqual(ranges('10.244.1.77/24'), ['10.244.1.0/24']);
  assert.deepEqual(ranges('192.0.2.1/32'), ['192.0.2.1']);
  assert.deepEqual(ranges('10.0.0.0/24', ['10.0.0.0/25', '10.0.0.128/25']), []);
  assert.deepEqual(ranges('10.0.0.0/24', ['10.0.0.16/28', '10.0.0.20/30']), ['10.0.0.0/28', '10.0.0.32-10.0.0.255']);
  assert.deepEqual(ranges('0.0.0.0/0', ['10.0.0.0/8']), ['0.0.0.0-9.255.255.255', '11.0.0.0-255.255.255.255']);
  assert.deepEqual(ranges('2001:db8::1/64', ['2001:db8::/65']), ['2001:db8:0:0:8000::/65']);
  assert.deepEqual(ranges('fd00::/120', ['fd00::5/128']), ['fd00::-fd00::4', 'fd00::6-fd00::ff']);
  assert.deepEqual(ranges('not-a-cidr'), []);
  assert.deepEqual(ipBlockRanges({ podSelector: {} }), []);
});

test('mergeRanges joins ranges that overlap or touch, IPv4 before IPv6', () => {
  const merged = mergeRanges([...ipBlockRanges({ ipBlock: { cidr: 'fd00::/64' } }), ...ipBlockRanges({ ipBlock: { cidr: '10.0.1.0/24' } }),
    ...ipBlockRanges({ ipBlock: { cidr: '10.0.0.0/24' } }), ...ipBlockRanges({ ipBlock: { cidr: '10.0.0.128/25' } })]);
  assert.deepEqual(merged.map(formatRange), ['10.0.0.0/23', 'fd00::/64']);
});

test('podAddresses: podIPs, else podIP; none for host-network, finished or address-less pods; a terminating pod keeps them', () => {
  assert.deepEqual(podAddresses(pod('x/a', ['10.244.1.2', 'fd00:0::2'])), ['10.244.1.2', 'fd00::2']);
  const single = pod('x/a', '10.244.1.2');
  delete single.status!.podIPs;
  assert.deepEqual(podAddresses(single), ['10.244.1.2']);
  assert.deepEqual(podAddresses(pod('x/h', '10.100.0.11', { hostNetwork: true })), []);
  assert.deepEqual(podAddresses(pod('x/t', '10.244.1.3', { terminating: true })), ['10.244.1.3']);
  assert.deepEqual(podAddresses({ ...single, status: { phase: 'Pending' } }), []);
  assert.deepEqual(podAddresses({ ...single, status: { ...single.status, phase: 'Succeeded' } }), []);
});

test('resolveNamedPort and portMatches: per pod, by name and protocol', () => {
  const a = pod('x/a', '10.244.1.2', { ports: [{ name: 'http', containerPort: 8080 }, { name: 'q', containerPort: 53, protocol: 'UDP' }] });
  const b = pod('x/b', '10.244.1.3', { ports: [{ name: 'http', containerPort: 9090 }] });
  assert.deepEqual([resolveNamedPort(a, 'http', 'TCP'), resolveNamedPort(b, 'http', 'TCP'), resolveNamedPort(a, 'http', 'UDP'),
    resolveNamedPort(a, 'q', 'UDP'), resolveNamedPort(undefined, 'http', 'TCP')], [8080, 9090, undefined, 53, undefined]);
  assert.equal(portMatches({ protocol: 'TCP', port: 'http' }, b, 9090, 'TCP'), true);
  assert.equal(portMatches({ protocol: 'TCP', port: 'http' }, a, 9090, 'TCP'), false);
  assert.equal(portMatches({ protocol: 'TCP' }, a, 1, 'TCP'), true);
  assert.equal(portMatches({ protocol: 'TCP' }, a, 0, 'ICMP'), false);
  assert.equal(portMatches({ protocol: 'UDP', port: 100, endPort: 200 }, undefined, 200, 'UDP'), true);
});

test('portSpecKind: every port, a numeric range, or a name, as portMatches reads them', () => {
  assert.deepEqual(portSpecKind({ protocol: 'UDP' }), { kind: 'all', protocol: 'UDP' });
  assert.deepEqual(portSpecKind({ protocol: 'TCP', port: 80 }), { kind: 'range', protocol: 'TCP', first: 80, last: 80 });
  assert.deepEqual(portSpecKind({ protocol: 'TCP', port: 80, endPort: 90 }), { kind: 'range', protocol: 'TCP', first: 80, last: 90 });
  assert.deepEqual(portSpecKind({ protocol: 'SCTP', port: 'web' }), { kind: 'named', protocol: 'SCTP', name: 'web' });
});

test('rulePeerRanges: ipBlocks and selected pods\' addresses, merged; undefined for a rule without peers', () => {
  const w = world({
    namespaces: [ns('x'), ns('y', { team: 'b' })],
    pods: [pod('x/a', '10.244.1.2'), pod('x/b', '10.244.1.3'), pod('y/a', ['10.244.2.2', 'fd00::2']),
      pod('y/h', '10.100.0.1', { hostNetwork: true }), pod('y/t', '10.244.2.3', { terminating: true, phase: 'Failed' })],
  });
  const idx = indexWorld(w);
  const fmt = (r: ReturnType<typeof rulePeerRanges>) => r?.map(formatRange);
  assert.equal(rulePeerRanges(idx, undefined, 'x'), undefined);
  assert.equal(rulePeerRanges(idx, [], 'x'), undefined);
  assert.deepEqual(fmt(rulePeerRanges(idx, [{ podSelector: {} }], 'x')), ['10.244.1.2/31']);
  assert.deepEqual(fmt(rulePeerRanges(idx, [{ namespaceSelector: { matchLabels: { team: 'b' } } }, { ipBlock: { cidr: '10.244.1.0/30' } }], 'x')),
    ['10.244.1.0/30', '10.244.2.2', 'fd00::2']);
  assert.deepEqual(fmt(rulePeerRanges(idx, [{ podSelector: { matchLabels: { pod: 'none' } } }], 'x')), []);
});

test('isolatingPolicies: own namespace, policy type, podSelector; in ns/name order', () => {
  const a = pod('x/a', '10.244.1.2', { labels: { app: 'web' } });
  const w = { policies: [
    policy('x/z-web', { podSelector: { matchLabels: { app: 'web' } } }),
    policy('x/a-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
    policy('x/db', { podSelector: { matchLabels: { app: 'db' } } }),
    policy('y/all', { podSelector: {} }),
    policy('x/eg', { podSelector: {}, policyTypes: ['Egress'] }),
  ] };
  assert.deepEqual(isolatingPolicies(w, a, 'Ingress').map((p) => p.metadata.name), ['a-all', 'z-web']);
  assert.deepEqual(isolatingPolicies(w, a, 'Egress').map((p) => p.metadata.name), ['a-all', 'eg']);
});

// A Service web in x: ClusterIP 10.96.0.10 port 80 → targetPort http, NodePort 30080; backends x/a (8080) and x/b.
const svc: Service = {
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'x' },
  spec: { type: 'NodePort', clusterIP: '10.96.0.10', selector: { app: 'web' }, sessionAffinity: 'None', internalTrafficPolicy: 'Cluster',
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http', nodePort: 30080 }] },
};
const slice = (endpoints: EndpointSlice['endpoints']): EndpointSlice => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { name: 'web-1', namespace: 'x', labels: { 'kubernetes.io/service-name': 'web' } },
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }], endpoints,
});
const ready = { ready: true, serving: true, terminating: false };

test('afterDnat: a ClusterIP or NodePort connection becomes one per backend; other addresses pass unchanged', () => {
  const slices = [slice([{ addresses: ['10.244.1.3'], conditions: ready }, { addresses: ['10.244.1.2'], conditions: ready },
    { addresses: ['10.244.2.9'], conditions: { ready: false, serving: true, terminating: true } }])];
  const c: Connection = { from: '10.244.2.3', to: '10.96.0.10', port: 80, protocol: 'TCP' };
  assert.deepEqual(afterDnat([svc], slices, c).map((x) => `${x.to}:${x.port}`), ['10.244.1.2:8080', '10.244.1.3:8080']);
  assert.deepEqual(afterDnat([svc], slices, { ...c, to: '10.100.0.11', port: 30080 }, ['10.100.0.11']).length, 2);
  assert.deepEqual(afterDnat([svc], slices, { ...c, port: 81 }), [{ ...c, port: 81 }]);
  assert.deepEqual(afterDnat([svc], slices, { ...c, protocol: 'UDP' }), [{ ...c, protocol: 'UDP' }]);
  // Only terminating endpoints still serving: the proxy sends to them.
  const draining = [slice([{ addresses: ['10.244.2.9'], conditions: { ready: false, serving: true, terminating: true } }])];
  assert.deepEqual(afterDnat([svc], draining, c).map((x) => x.to), ['10.244.2.9']);
  assert.deepEqual(afterDnat([svc], [], c), []);
});

test('policy after DNAT: a connection to a ClusterIP is judged against the backend pod and its target port', () => {
  const w = world({
    namespaces: [ns('x'), ns('y')], nodes: [node('n1', '10.100.0.11')],
    pods: [pod('x/a', '10.244.1.2', { labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8080 }] }), pod('y/c', '10.244.2.3')],
    policies: [policy('x/web', { ingress: [{ ports: [{ protocol: 'TCP', port: 'http' }] }] })],
  });
  const toService: Connection = { from: '10.244.2.3', to: '10.96.0.10', port: 80, protocol: 'TCP' };
  const [backend] = afterDnat([svc], [slice([{ addresses: ['10.244.1.2'], conditions: ready }])], toService);
  assert.deepEqual(evaluate(w, backend).ingress, { pod: 'x/a', isolatedBy: ['x/web'], allowed: true, allowedBy: { policy: 'x/web', rule: 0 } });
  const port80 = { ...w, policies: [policy('x/web', { ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }] })] };
  assert.equal(evaluate(port80, backend).allowed, false, 'the Service port (80) is not what policy sees');
  // Untranslated, the ClusterIP is no pod's address: nothing would be judged, which is why callers translate.
  assert.equal(evaluate(port80, toService).ingress.pod, undefined);
});

test('explainText: the verdict per direction, the isolating policies and the allowing rule, or none allows', () => {
  const w = world({
    namespaces: [ns('x'), ns('y')], nodes: [node('n1', '10.100.0.11')],
    pods: [pod('x/a', '10.244.1.2'), pod('y/b', '10.244.1.3'), pod('y/h', '10.100.0.11', { hostNetwork: true })],
    policies: [policy('y/deny', { ingress: [] }),
      policy('y/web', { ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'c' } } }], ports: [{ protocol: 'TCP', port: 80 }] }] }),
      policy('y/from-x', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }], ports: [{ protocol: 'TCP', port: 81 }] }] })],
  });
  const explain = (c: Connection) => explainText(w, c, evaluate(w, c));
  assert.deepEqual(explain({ from: '10.244.1.2', to: '10.244.1.3', port: 81, protocol: 'TCP' }), [
    'x/a (10.244.1.2) -> y/b (10.244.1.3) tcp/81: allowed',
    'egress of x/a: not isolated (no egress policy selects it); allowed',
    'ingress of y/b: isolated by y/deny, y/from-x, y/web; allowed by y/from-x ingress[0]',
    '  y/from-x ingress[0]: from all pods in namespaces kubernetes.io/metadata.name=x; ports tcp/81',
  ]);
  assert.deepEqual(explain({ from: '10.244.1.2', to: '10.244.1.3', port: 80, protocol: 'TCP' }), [
    'x/a (10.244.1.2) -> y/b (10.244.1.3) tcp/80: denied',
    'egress of x/a: not isolated (no egress policy selects it); allowed',
    'ingress of y/b: isolated by y/deny, y/from-x, y/web; none allows',
    '  y/deny: no ingress rules (allows nothing)',
    '  y/from-x ingress[0]: from all pods in namespaces kubernetes.io/metadata.name=x; ports tcp/81 (port not listed)',
    '  y/web ingress[0]: from pods pod=c in namespace y; ports tcp/80 (source not a peer)',
  ]);
  const fromNode = explain({ from: '10.100.0.11', to: '10.244.1.3', port: 0, protocol: 'ICMP' });
  assert.equal(fromNode[0], 'node n1 (10.100.0.11; host network of y/h) -> y/b (10.244.1.3) icmp: allowed');
  assert.equal(fromNode[1], 'egress of 10.100.0.11: not judged (a node\'s address: policy isolates no node or host-network pod)');
  assert.match(fromNode[2], /^ingress of y\/b: allowed \(node n1 always reaches its own pods\); isolated by y\/deny/);
});
