// `flatnet policy explain`: its arguments, the choice of addresses, and the output for a pod pair and
// for a Service address (judged per backend after DNAT), without a lab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explain, parseEnd, parsePort, pickPair, readPolicyObjects, traceOnNode } from '../../src/cli/policy-command.js';
import { renderPolicy } from '../../src/dataplane/policy/renderer.js';
import { renderTable } from '../../src/dataplane/nft/model.js';
import { MemoryStore } from '../../src/store/memory.js';
import { objectKey } from '../../src/api/keys.js';
import { UsageError } from '../../src/cli/usage.js';
import type { EndpointSlice, Service } from '../../src/api/types.js';
import { node, ns, pod, policy, world } from '../helpers/policy-gen.js';

test('parseEnd: NS/POD, POD in the namespace given, or an IP', () => {
  assert.deepEqual(parseEnd('x/a', 'default'), { pod: { namespace: 'x', name: 'a' } });
  assert.deepEqual(parseEnd('a', 'y'), { pod: { namespace: 'y', name: 'a' } });
  assert.deepEqual(parseEnd('10.244.1.2', 'y'), { ip: '10.244.1.2' });
  assert.deepEqual(parseEnd('fd00::2', 'y'), { ip: 'fd00::2' });
  assert.throws(() => parseEnd('x/a/b', 'y'), UsageError);
  assert.throws(() => parseEnd('/a', 'y'), UsageError);
});

test('parsePort: TCP by default, udp and sctp by suffix, icmp without a port', () => {
  assert.deepEqual(parsePort('80'), { port: 80, protocol: 'TCP' });
  assert.deepEqual(parsePort('53/udp'), { port: 53, protocol: 'UDP' });
  assert.deepEqual(parsePort('9/SCTP'), { port: 9, protocol: 'SCTP' });
  assert.deepEqual(parsePort('icmp'), { port: 0, protocol: 'ICMP' });
  for (const bad of ['0', '65536', '80/icmp', 'http', '']) assert.throws(() => parsePort(bad), UsageError, bad);
});

test('pickPair: one family for both ends, IPv4 first', () => {
  assert.deepEqual(pickPair(['10.0.0.1', 'fd00::1'], ['fd00::2', '10.0.0.2']), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(pickPair(['10.0.0.1', 'fd00::1'], ['fd00::2']), ['fd00::1', 'fd00::2']);
  assert.throws(() => pickPair(['10.0.0.1'], ['fd00::2']), /no address family in common/);
});

const w = world({
  namespaces: [ns('x'), ns('y')], nodes: [node('n1', '10.100.0.11')],
  pods: [pod('x/a', '10.244.1.2'), pod('y/c', '10.244.1.4'), pod('y/b', '10.244.1.3', { labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8080 }] })],
  policies: [policy('y/deny', { ingress: [] }), policy('y/web', { ingress: [{ from: [{ podSelector: {} }], ports: [{ protocol: 'TCP', port: 'http' }] }] })],
});

test('explain: a pod pair, allowed by a rule or denied with every isolating policy named', () => {
  const denied = explain(w, [], [], ['x/a', 'y/b', '8080'], 'default');
  assert.deepEqual(denied.head, []);
  assert.equal(denied.results.length, 1);
  assert.equal(denied.results[0].verdict.allowed, false);
  assert.equal(denied.results[0].lines[2], 'ingress of y/b: isolated by y/deny, y/web; none allows');
  const allowed = explain(w, [], [], ['c', 'y/b', '8080/tcp'], 'y');
  assert.equal(allowed.results[0].lines[0], 'y/c (10.244.1.4) -> y/b (10.244.1.3) tcp/8080: allowed');
  assert.equal(allowed.results[0].lines[2], 'ingress of y/b: isolated by y/deny, y/web; allowed by y/web ingress[0]');
  assert.equal(allowed.results[0].lines[3], '  y/web ingress[0]: from all pods in namespace y; ports tcp/http (8080 on y/b)');
  assert.throws(() => explain(w, [], [], ['x/nope', 'y/b', '80'], 'default'), /pod x\/nope not found/);
  assert.throws(() => explain(w, [], [], ['x/a', 'y/b'], 'default'), UsageError);
});

test('explain: a Service address is judged per backend, on the backend\'s target port', () => {
  const svc: Service = {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'y' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }] },
  };
  const slice: EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: 'web-1', namespace: 'y', labels: { 'kubernetes.io/service-name': 'web' } },
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: [{ addresses: ['10.244.1.3'], conditions: { ready: true, serving: true, terminating: false } }],
  };
  const out = explain(w, [svc], [slice], ['x/a', '10.96.0.10', '80'], 'default');
  assert.deepEqual(out.head, ['10.96.0.10 80 is a Service address: judged after DNAT, for each of its 1 backend(s)']);
  assert.deepEqual(out.results[0].connection, { from: '10.244.1.2', to: '10.244.1.3', port: 8080, protocol: 'TCP' });
  assert.equal(out.results[0].lines[0], 'x/a (10.244.1.2) -> y/b (10.244.1.3) tcp/8080: denied');
  const empty = explain(w, [svc], [], ['x/a', '10.96.0.10', '80'], 'default');
  assert.deepEqual([empty.results.length, /no endpoints/.test(empty.head[0])], [0, true]);
});

test('readPolicyObjects: the world as the store holds it, policies included', async () => {
  const store = new MemoryStore();
  try {
    for (const o of [...w.namespaces, ...w.nodes, ...w.pods, ...w.policies]) {
      await store.put(objectKey(o.kind, o.metadata.name, o.metadata.namespace), JSON.stringify(o));
    }
    const read = await readPolicyObjects(store);
    assert.deepEqual(read.world.policies.map((p) => p.metadata.name).sort(), ['deny', 'web']);
    assert.equal(read.world.pods.length, 3);
    assert.equal(explain(read.world, read.services, read.slices, ['x/a', 'y/b', '8080'], 'default').results[0].verdict.allowed, false);
  } finally { await store.close(); }
});

test('--node: the tracer over the node\'s table agrees with the evaluator; a missing table is a disagreement', () => {
  const table = renderTable(renderPolicy({ nodeName: 'n1', pods: w.pods, namespaces: w.namespaces, policies: w.policies, ipv6: false }));
  const denied = explain(w, [], [], ['x/a', 'y/b', '8080'], 'default').results;
  const ok = traceOnNode(w, denied, 'n1', table);
  assert.equal(ok.agree, true);
  assert.match(ok.lines[0], /^node n1: tracer drops at inet flatnet-policy ig-\w+ \("ingress isolated by y\/deny, y\/web"\), as the evaluator says \(egress and ingress judged there\)$/);
  const allowed = explain(w, [], [], ['y/c', 'y/b', '8080'], 'default').results;
  assert.equal(traceOnNode(w, allowed, 'n1', table).agree, true);
  const gone = traceOnNode(w, denied, 'n1', '');
  assert.equal(gone.agree, false);
  assert.equal(gone.lines[0], 'node n1 has no table inet flatnet-policy: it filters nothing');
  assert.match(gone.lines[1], /^node n1: DISAGREE: the evaluator says drop \(egress and ingress judged there\), the tracer says accept/);
  assert.throws(() => traceOnNode(w, denied, 'n9', table), /no such node/);
});
