// flatnet trace's kernel reason for a lost packet, pure: where to ask, the `ip route get` question, the
// kernel's error text read as a reason, a failed neighbour, and the reason in the report's text and
// disagreement line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstTaggedPacket, parseTraceLine, type TraceEvent } from '../../src/trace/events.js';
import { lostLine, neighbourFailure, parseRouteGetError, reasonQuestion, routeGetArgs } from '../../src/trace/reason.js';
import { buildReport, formatReport, lastNode, withKernelReason, type TraceRequest } from '../../src/trace/report.js';
import { indexWorld } from '../../src/policy/evaluate.js';
import { namespace, pod } from '../helpers/policy-objects.js';
import { node } from '../helpers/policy-gen.js';

const OWN = 'flatnet-trace-26000';
const q = { dst: '10.244.2.2', src: '10.244.1.3', iif: 'fn1' };

test('the kernel\'s error text is a reason: no route, unreachable host, reverse-path filter; others are not', () => {
  assert.equal(parseRouteGetError('RTNETLINK answers: Network is unreachable\n', q), 'no route to 10.244.2.2: Network is unreachable');
  assert.equal(parseRouteGetError('RTNETLINK answers: No route to host', q), 'no route to host 10.244.2.2 (an unreachable route, or forwarding is off): No route to host');
  assert.equal(parseRouteGetError('RTNETLINK answers: Invalid cross-device link', q), 'reverse-path filter: 10.244.1.3 is not routed back through fn1: Invalid cross-device link');
  assert.equal(parseRouteGetError('Error: inet address is expected rather than "x".', q), undefined);
  assert.equal(parseRouteGetError('', q), undefined);
});

test('the question is input routing from the device the packet came in on', () => {
  assert.deepEqual(routeGetArgs(q), ['route', 'get', '10.244.2.2', 'from', '10.244.1.3', 'iif', 'fn1']);
  assert.deepEqual(routeGetArgs({ dst: '10.0.0.1', src: '10.100.0.11' }), ['route', 'get', '10.0.0.1']);
});

test('a FAILED or INCOMPLETE neighbour is a reason; a reachable one is not', () => {
  assert.equal(neighbourFailure([{ dst: '10.100.0.12', state: ['FAILED'] }], '10.100.0.12', 'eth0'), 'neighbour 10.100.0.12 on eth0 FAILED (no answer to ARP)');
  assert.equal(neighbourFailure([{ dst: '10.100.0.12', state: ['INCOMPLETE'] }], '10.100.0.12', 'eth0'), 'neighbour 10.100.0.12 on eth0 INCOMPLETE (no answer to ARP)');
  assert.equal(neighbourFailure([{ dst: '10.100.0.12', state: ['REACHABLE'] }], '10.100.0.12', 'eth0'), undefined);
  assert.equal(neighbourFailure([], '10.100.0.12', 'eth0'), undefined);
});

const world = {
  namespaces: [namespace('default')],
  pods: [pod('default', 'c1', { node: 'node-1', ip: '10.244.1.3' }), pod('default', 'web', { node: 'node-2', ip: '10.244.2.2' })],
  policies: [],
  nodes: [node('node-1', '10.100.0.11'), node('node-2', '10.100.0.12')],
};
const events = firstTaggedPacket([
  'trace id a ip flatnet-trace-26000 pre packet: iif "fn1" ip saddr 10.244.1.3 ip daddr 10.244.2.2 ip protocol tcp tcp sport 26000 tcp dport 8080 tcp flags == syn',
  'trace id a inet flatnet-policy forward-ingress packet: iif "fn1" oif "eth0" ip saddr 10.244.1.3 ip daddr 10.244.2.2 ip protocol tcp tcp sport 26000 tcp dport 8080 tcp flags == syn',
].map(parseTraceLine).filter((e): e is TraceEvent => !!e), OWN);

test('where to ask: the node itself, or the router when its route leads to a gateway that is no node', () => {
  const idx = indexWorld(world);
  assert.deepEqual(reasonQuestion({ node: 'node-1', events }, idx), { node: 'node-1', where: 'node', dst: '10.244.2.2', src: '10.244.1.3', iif: 'fn1' });
  const toRouter = { node: 'node-1', events, route: { dst: '10.244.2.2', dev: 'eth0', gateway: '10.100.0.1' } };
  assert.deepEqual(reasonQuestion(toRouter, idx), { node: 'node-1', where: 'router', dst: '10.244.2.2', src: '10.244.1.3', gateway: '10.100.0.1' });
  const toNode = { node: 'node-1', events, route: { dst: '10.244.2.2', dev: 'eth0', gateway: '10.100.0.12' } };
  assert.equal(reasonQuestion(toNode, idx)?.where, 'node');
});

test('a lost packet\'s report carries the reason: its field, the result line and the disagreement line', () => {
  const req: TraceRequest = { from: { label: 'default/c1', address: '10.244.1.3', node: 'node-1' }, to: { label: 'default/web', address: '10.244.2.2', node: 'node-2' }, port: 8080, protocol: 'tcp', tag: 26000 };
  const r = buildReport(req, [{ node: 'node-1', events }], { ok: false, detail: 'EHOSTUNREACH' }, { world, services: [], slices: [] });
  assert.equal(r.outcome, 'lost');
  assert.equal(lastNode(r), 'node-1');
  assert.ok(r.disagreements.includes(lostLine('node-1', undefined)), r.disagreements.join('\n'));
  const k = { node: 'node-1', reason: 'no route to 10.244.2.2: Network is unreachable', evidence: 'ip route get 10.244.2.2 from 10.244.1.3 iif fn1: RTNETLINK answers: Network is unreachable', askedIn: 'lab-node-1', where: 'node' as const };
  const withReason = withKernelReason(r, k);
  assert.deepEqual(withReason.kernelReason, k);
  assert.ok(withReason.disagreements.some((d) => /kernel dropped it on node-1: no route to 10\.244\.2\.2: Network is unreachable \(asked in lab-node-1: ip route get/.test(d)), withReason.disagreements.join('\n'));
  assert.equal(withReason.disagreements.length, r.disagreements.length);
  assert.match(formatReport(withReason), /^result: lost on node-1 \(kernel: no route to 10\.244\.2\.2: Network is unreachable, asked in lab-node-1\); the sender saw: EHOSTUNREACH$/m);
  // Asked at the router the node's route led to: the drop is placed past the node.
  const atRouter = withKernelReason(r, { ...k, askedIn: 'lab-router', where: 'router' });
  assert.match(formatReport(atRouter), /^result: lost past node-1, at the router \(kernel: no route to 10\.244\.2\.2: Network is unreachable, asked in lab-router\);/m);
  assert.ok(atRouter.disagreements.some((d) => /kernel dropped it past node-1, at the router: no route to/.test(d)), atRouter.disagreements.join('\n'));
});
