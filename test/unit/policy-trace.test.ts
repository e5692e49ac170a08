// What one node's policy table should do with a connection, and the comparison with a tracer's answer
// (`flatnet policy explain --node`), on made-up tracer results: the tracer itself is tested with its own code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, type Connection } from '../../src/policy/evaluate.js';
import { compareTrace, expectationOnNode, type TraceLike } from '../../src/policy/trace-compare.js';
import { node, ns, pod, policy, world } from '../helpers/policy-gen.js';
import { renderPolicy } from '../../src/dataplane/policy/renderer.js';
import { renderTable } from '../../src/dataplane/nft/model.js';
import { RulesetTracer } from '../../src/dataplane/nft/tracer.js';

const w = world({
  namespaces: [ns('x'), ns('y')], nodes: [node('n1', '10.100.0.11'), node('n2', '10.100.0.12')],
  pods: [pod('x/a', '10.244.1.2', { node: 'n1' }), pod('y/b', '10.244.2.2', { node: 'n2' })],
  policies: [policy('y/deny', { ingress: [] })],
});
const conn: Connection = { from: '10.244.1.2', to: '10.244.2.2', port: 80, protocol: 'TCP' };
const drop: TraceLike = { verdict: 'drop', path: [
  { table: 'inet flatnet-policy', chain: 'forward-ingress', rule: 'ip daddr vmap @ingress', did: 'goto ig-0a1b2c3d' },
  { table: 'inet flatnet-policy', chain: 'ig-0a1b2c3d', rule: 'drop comment "ingress isolated by y/deny"', comment: 'ingress isolated by y/deny', did: 'drop' },
] };
const accept: TraceLike = { verdict: 'accept', path: [{ table: 'inet flatnet-policy', chain: 'forward-ingress', rule: '', did: 'policy accept' }] };

test('expectationOnNode: each node judges its own pods only; the packet the tracer takes', () => {
  const v = evaluate(w, conn);
  const n1 = expectationOnNode(w, conn, v, 'n1');
  assert.deepEqual([n1.judged, n1.allowed], [['egress'], true]);
  assert.deepEqual(n1.packet, { family: 4, hook: 'forward', saddr: '10.244.1.2', daddr: '10.244.2.2', protocol: 'tcp', ctState: 'new', local: ['10.100.0.11'], sport: 40000, dport: 80 });
  const n2 = expectationOnNode(w, conn, v, 'n2');
  assert.deepEqual([n2.judged, n2.allowed, n2.note], [['ingress'], false, undefined]);
  // The node itself sends it: output, not filtered, even though y/b is isolated.
  const fromNode = expectationOnNode(w, { ...conn, from: '10.100.0.12' }, evaluate(w, { ...conn, from: '10.100.0.12' }), 'n2');
  assert.deepEqual([fromNode.packet.hook, fromNode.allowed], ['output', true]);
  // A pod to its node's address: input; ICMP carries no ports.
  const ping: Connection = { from: '10.244.1.2', to: '10.100.0.11', port: 0, protocol: 'ICMP' };
  const toNode = expectationOnNode(w, ping, evaluate(w, ping), 'n1');
  assert.deepEqual([toNode.packet.hook, toNode.packet.dport, toNode.packet.protocol, toNode.judged], ['input', undefined, 'icmp', ['egress']]);
  assert.match(expectationOnNode(w, conn, v, 'n3').note!, /neither end/);
  // A pod to itself never reaches a node's hooks: nothing to compare.
  const self: Connection = { ...conn, to: conn.from };
  const loop = expectationOnNode(w, self, evaluate(w, self), 'n1');
  assert.deepEqual([loop.comparable, compareTrace(loop, drop)], [false, { agree: true, lines: [`node n1: not compared (${loop.note})`] }]);
});

test('compareTrace: agreement names where the tracer decided; disagreement says DISAGREE', () => {
  const v = evaluate(w, conn);
  const n2 = expectationOnNode(w, conn, v, 'n2');
  assert.deepEqual(compareTrace(n2, drop), { agree: true, lines: [
    'node n2: tracer drops at inet flatnet-policy ig-0a1b2c3d ("ingress isolated by y/deny"), as the evaluator says (ingress judged there)'] });
  const bad = compareTrace(n2, accept);
  assert.equal(bad.agree, false);
  assert.match(bad.lines[0], /^node n2: DISAGREE: the evaluator says drop \(ingress judged there\), the tracer says accept at inet flatnet-policy forward-ingress/);
});

test('renderer + tracer: an egress named port through an ipBlock peer reaches the pod inside the block', () => {
  // Found by random worlds: the named-port set held only selector-picked pods, so this was dropped.
  const v = world({
    namespaces: [ns('x'), ns('y')], nodes: [node('n1', '10.100.0.11'), node('n2', '10.100.0.12')],
    pods: [pod('x/a', '10.244.1.2', { node: 'n1' }),
      pod('y/b', '10.244.2.2', { node: 'n2', ports: [{ name: 'metrics', containerPort: 9090 }] })],
    policies: [policy('x/eg', { policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 'metrics' }] }] })],
  });
  const tracer = new RulesetTracer([renderTable(renderPolicy({ nodeName: 'n1', pods: v.pods, namespaces: v.namespaces, policies: v.policies, ipv6: false }))]);
  for (const [port, want] of [[9090, true], [9091, false]] as const) {
    const c: Connection = { from: '10.244.1.2', to: '10.244.2.2', port, protocol: 'TCP' };
    const verdict = evaluate(v, c);
    assert.equal(verdict.allowed, want);
    const e = expectationOnNode(v, c, verdict, 'n1');
    assert.deepEqual(compareTrace(e, tracer.trace(e.packet)).agree, true, `port ${port}`);
  }
});
