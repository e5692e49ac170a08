// The NetworkPolicy evaluator on cases written from the Kubernetes API reference (networking.k8s.io/v1
// NetworkPolicy) and upstream's e2e netpol matrix: one case per field and per pitfall of issue 11.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, type Connection, type PolicyWorld } from '../../src/policy/evaluate.js';
import type { NetworkPolicy, NetworkPolicyPort } from '../../src/api/types.js';
import { node, ns, pod, policy, world } from '../helpers/policy-gen.js';

// Namespaces x, y, z; pods a, b, c in x (a and b on n1, c on n2), a and b in y, a in z.
const base = (policies: NetworkPolicy[] = [], extra: Partial<PolicyWorld> = {}): PolicyWorld => world({
  nodes: [node('n1', '10.100.0.11'), node('n2', '10.100.0.12')],
  namespaces: [ns('x', { team: 'a' }), ns('y', { team: 'b' }), ns('z')],
  pods: [
    pod('x/a', '10.244.1.2', { ports: [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] }),
    pod('x/b', '10.244.1.3', { ports: [{ name: 'http', containerPort: 9090 }] }),
    pod('x/c', '10.244.2.2', { node: 'n2' }),
    pod('y/a', '10.244.2.3', { node: 'n2' }),
    pod('y/b', '10.244.2.4', { node: 'n2' }),
    pod('z/a', '10.244.1.9'),
    ...(extra.pods ?? []),
  ],
  policies,
});
const IP: Record<string, string> = {
  'x/a': '10.244.1.2', 'x/b': '10.244.1.3', 'x/c': '10.244.2.2', 'y/a': '10.244.2.3', 'y/b': '10.244.2.4', 'z/a': '10.244.1.9',
};
const tcp = (from: string, to: string, port = 80): Connection => ({ from: IP[from] ?? from, to: IP[to] ?? to, port, protocol: 'TCP' });
const allowed = (w: PolicyWorld, c: Connection) => evaluate(w, c).allowed;

test('no policy: every pod reaches every pod, nothing isolated', () => {
  const v = evaluate(base(), tcp('x/a', 'y/b'));
  assert.deepEqual(v, { allowed: true, egress: { pod: 'x/a', isolatedBy: [], allowed: true }, ingress: { pod: 'y/b', isolatedBy: [], allowed: true } });
});

test('podSelector {} selects every pod of its namespace; ingress: [] allows nothing; other namespaces untouched', () => {
  const w = base([policy('x/deny', { podSelector: {}, ingress: [] })]);
  for (const to of ['x/a', 'x/b', 'x/c']) assert.equal(allowed(w, tcp('y/a', to)), false, to);
  assert.equal(allowed(w, tcp('x/a', 'y/a')), true, 'y is not isolated');
  const v = evaluate(w, tcp('y/a', 'x/b'));
  assert.deepEqual(v.ingress, { pod: 'x/b', isolatedBy: ['x/deny'], allowed: false });
  assert.deepEqual(v.egress, { pod: 'y/a', isolatedBy: [], allowed: true });
});

test('a policy never isolates pods of another namespace, whatever its selector', () => {
  const w = base([policy('y/deny', { podSelector: {}, ingress: [], egress: [] })]);
  assert.equal(allowed(w, tcp('x/a', 'x/b')), true);
  assert.equal(allowed(w, tcp('x/a', 'y/a')), false);
  assert.equal(allowed(w, tcp('y/a', 'x/a')), false);
});

test('ingress: [{}] allows everything; egress and ingress are each judged', () => {
  assert.equal(allowed(base([policy('x/open', { ingress: [{}] })]), tcp('z/a', 'x/a')), true);
  // Egress of y/a allows all, ingress of x/a allows nothing: the connection fails on ingress alone.
  const w = base([policy('y/eg', { policyTypes: ['Egress'], egress: [{}] }), policy('x/in', { ingress: [] })]);
  const v = evaluate(w, tcp('y/a', 'x/a'));
  assert.deepEqual([v.allowed, v.egress.allowed, v.egress.allowedBy, v.ingress.allowed], [false, true, { policy: 'y/eg', rule: 0 }, false]);
  // policyTypes [Egress] only: ingress of y pods is not isolated.
  assert.equal(evaluate(w, tcp('x/a', 'y/a')).ingress.isolatedBy.length, 0);
});

test('policyTypes decide the direction: an Egress policy with no rules denies all egress, ingress untouched', () => {
  const w = base([policy('x/no-egress', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] })]);
  assert.equal(allowed(w, tcp('x/a', 'y/a')), false);
  assert.equal(allowed(w, tcp('x/b', 'y/a')), true, 'only pod=a is selected');
  assert.equal(allowed(w, tcp('y/a', 'x/a')), true, 'ingress of x/a is not isolated');
});

test('the union of every isolating policy; allowedBy names the first allowing rule', () => {
  const w = base([
    policy('x/deny', { ingress: [] }),
    policy('x/web', { ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'c' } } }] }, { ports: [{ protocol: 'TCP', port: 443 }] }] }),
  ]);
  const v = evaluate(w, tcp('y/a', 'x/a', 443));
  assert.deepEqual(v.ingress, { pod: 'x/a', isolatedBy: ['x/deny', 'x/web'], allowed: true, allowedBy: { policy: 'x/web', rule: 1 } });
  assert.deepEqual(evaluate(w, tcp('x/c', 'x/a')).ingress.allowedBy, { policy: 'x/web', rule: 0 });
  assert.equal(allowed(w, tcp('y/a', 'x/a', 80)), false);
});

test('one peer with podSelector and namespaceSelector is AND; two peers are OR', () => {
  const and = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] })]);
  assert.deepEqual(['y/a', 'y/b', 'x/c', 'z/a'].map((f) => allowed(and, tcp(f, 'x/a'))), [true, false, false, false]);
  const or = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }, { podSelector: { matchLabels: { pod: 'a' } } }] }] })]);
  // y/* by the namespace peer; x/a... by the pod peer in the policy's own namespace only (not z/a).
  assert.deepEqual(['y/a', 'y/b', 'x/c', 'z/a'].map((f) => allowed(or, tcp(f, 'x/b'))), [true, true, false, false]);
  assert.equal(allowed(or, tcp('x/a', 'x/b')), true);
});

test('a podSelector peer without namespaceSelector means the policy\'s own namespace; namespaceSelector {} means all', () => {
  const own = base([policy('x/p', { ingress: [{ from: [{ podSelector: {} }] }] })]);
  assert.deepEqual(['x/c', 'y/a', 'z/a'].map((f) => allowed(own, tcp(f, 'x/a'))), [true, false, false]);
  const all = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: {} }] }] })]);
  assert.deepEqual(['x/c', 'y/a', 'z/a'].map((f) => allowed(all, tcp(f, 'x/a'))), [true, true, true]);
});

test('namespaceSelector by kubernetes.io/metadata.name, also for a namespace object that lacks the label', () => {
  const w = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }] }] })]);
  assert.deepEqual(['z/a', 'y/a', 'x/c'].map((f) => allowed(w, tcp(f, 'x/a'))), [true, false, false]);
});

test('matchExpressions: In, NotIn, Exists, DoesNotExist', () => {
  const sel = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', values?: string[]) =>
    base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator, values }] } }] }] })]);
  const from = (w: PolicyWorld) => ['x/c', 'y/a', 'z/a'].map((f) => allowed(w, tcp(f, 'x/a')));
  assert.deepEqual(from(sel('In', ['b'])), [false, true, false]);
  assert.deepEqual(from(sel('NotIn', ['b'])), [true, false, true], 'NotIn holds for a namespace without the key');
  assert.deepEqual(from(sel('Exists')), [true, true, false]);
  assert.deepEqual(from(sel('DoesNotExist')), [false, false, true]);
});

test('a named port is resolved on each destination pod: http is 8080 on x/a, 9090 on x/b, absent on x/c', () => {
  const w = base([policy('x/http', { ingress: [{ ports: [{ protocol: 'TCP', port: 'http' }] }] })]);
  assert.equal(allowed(w, tcp('y/a', 'x/a', 8080)), true);
  assert.equal(allowed(w, tcp('y/a', 'x/a', 9090)), false);
  assert.equal(allowed(w, tcp('y/a', 'x/b', 9090)), true);
  assert.equal(allowed(w, tcp('y/a', 'x/b', 8080)), false);
  for (const port of [80, 8080, 9090]) assert.equal(allowed(w, tcp('y/a', 'x/c', port)), false, 'a pod without the name matches nothing');
  // By name and protocol: dns is UDP 53 on x/a; TCP 53 by that name matches nothing.
  const dns = base([policy('x/dns', { ingress: [{ ports: [{ protocol: 'UDP', port: 'dns' }, { protocol: 'TCP', port: 'dns' }] }] })]);
  assert.equal(allowed(dns, { ...tcp('y/a', 'x/a', 53), protocol: 'UDP' }), true);
  assert.equal(allowed(dns, tcp('y/a', 'x/a', 53)), false);
});

test('egress named ports resolve on the peer pod; an address that is no pod\'s matches no named port', () => {
  const w = base([policy('y/eg', { policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'TCP', port: 'http' }] }] })]);
  assert.equal(allowed(w, tcp('y/a', 'x/a', 8080)), true);
  assert.equal(allowed(w, tcp('y/a', 'x/b', 9090)), true);
  assert.equal(allowed(w, tcp('y/a', 'x/b', 8080)), false);
  assert.equal(allowed(w, tcp('y/a', '192.0.2.1', 8080)), false);
});

test('ipBlock except narrows only its own peer: another peer allowing the range still allows it', () => {
  const peers = [{ ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.2.0/24'] } }];
  const one = base([policy('x/p', { ingress: [{ from: peers }] })]);
  assert.deepEqual(['z/a', 'y/a', 'x/c'].map((f) => allowed(one, tcp(f, 'x/a'))), [true, false, false]);
  const withPeer = base([policy('x/p', { ingress: [{ from: [...peers, { namespaceSelector: { matchLabels: { team: 'b' } } }] }] })]);
  assert.deepEqual(['z/a', 'y/a', 'x/c'].map((f) => allowed(withPeer, tcp(f, 'x/a'))), [true, true, false]);
  const otherRule = base([policy('x/p', { ingress: [{ from: peers }, { from: [{ ipBlock: { cidr: '10.244.2.2/32' } }] }] })]);
  assert.deepEqual(evaluate(otherRule, tcp('x/c', 'x/a')).ingress.allowedBy, { policy: 'x/p', rule: 1 });
});

test('ipBlock: a cidr with host bits set is its network; it matches pod addresses and outside addresses alike', () => {
  const w = base([policy('x/p', { ingress: [{ from: [{ ipBlock: { cidr: '10.244.1.77/24' } }] }] })]);
  assert.deepEqual(['z/a', 'x/c'].map((f) => allowed(w, tcp(f, 'x/a'))), [true, false]);
  const eg = base([policy('x/eg', { policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24' } }] }] })]);
  assert.equal(allowed(eg, tcp('x/a', '192.0.2.10')), true);
  assert.equal(allowed(eg, tcp('x/a', '198.51.100.1')), false);
});

test('endPort: port..endPort, both ends included', () => {
  const w = base([policy('x/p', { ingress: [{ ports: [{ protocol: 'TCP', port: 8000, endPort: 8080 }] }] })]);
  assert.deepEqual([7999, 8000, 8040, 8080, 8081].map((p) => allowed(w, tcp('y/a', 'x/a', p))), [false, true, true, true, false]);
});

test('protocol: TCP when a port gives none; a UDP rule never allows TCP; SCTP never allows TCP or UDP', () => {
  const noProto = { port: 80 } as unknown as NetworkPolicyPort; // as stored by something that skipped defaulting
  const dflt = base([policy('x/p', { ingress: [{ ports: [noProto] }] })]);
  assert.equal(allowed(dflt, tcp('y/a', 'x/a', 80)), true);
  assert.equal(allowed(dflt, { ...tcp('y/a', 'x/a', 80), protocol: 'UDP' }), false);
  const udp = base([policy('x/p', { ingress: [{ ports: [{ protocol: 'UDP', port: 80 }] }] })]);
  assert.equal(allowed(udp, tcp('y/a', 'x/a', 80)), false);
  assert.equal(allowed(udp, { ...tcp('y/a', 'x/a', 80), protocol: 'UDP' }), true);
  const sctp = base([policy('x/p', { ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }, { protocol: 'SCTP' }] }] })]);
  for (const protocol of ['TCP', 'UDP'] as const) assert.equal(allowed(sctp, { ...tcp('y/a', 'x/a', 80), protocol }), false, protocol);
  assert.equal(allowed(sctp, { ...tcp('y/a', 'x/a', 80), protocol: 'SCTP' }), true);
});

test('ICMP: allowed only by rules without ports', () => {
  const ping = (w: PolicyWorld) => allowed(w, { from: IP['y/a'], to: IP['x/a'], port: 0, protocol: 'ICMP' });
  assert.equal(ping(base([policy('x/p', { ingress: [{ ports: [{ protocol: 'TCP' }] }] })])), false);
  assert.equal(ping(base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: {} }] }] })])), true);
  assert.equal(ping(base([policy('x/p', { ingress: [] })])), false);
  assert.equal(ping(base()), true);
});

test('host-network pods are their node\'s address: podSelector never matches them, ipBlock does; never isolated', () => {
  const h = pod('x/h', '10.100.0.12', { node: 'n2', hostNetwork: true, labels: { pod: 'a' } });
  const sel = base([policy('x/p', { ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] })], { pods: [h] });
  assert.equal(allowed(sel, tcp('10.100.0.12', 'x/b')), false);
  const block = base([policy('x/p', { ingress: [{ from: [{ ipBlock: { cidr: '10.100.0.0/24' } }] }] })], { pods: [h] });
  assert.equal(allowed(block, tcp('10.100.0.12', 'x/b')), true);
  // As a destination, the address is no pod's: not isolated even though a deny-all selects pod=a.
  const deny = base([policy('x/deny', { ingress: [], egress: [] })], { pods: [h] });
  assert.deepEqual(evaluate(deny, tcp('z/a', '10.100.0.12')).ingress, { isolatedBy: [], allowed: true });
});

test('a node always reaches its own pods; another node is judged like any address', () => {
  const w = base([policy('x/deny', { ingress: [] })]);
  const own = evaluate(w, tcp('10.100.0.11', 'x/a'));
  assert.deepEqual([own.allowed, own.ingress.isolatedBy, typeof own.ingress.always], [true, ['x/deny'], 'string']);
  assert.equal(allowed(w, tcp('10.100.0.12', 'x/a')), false);
  assert.equal(allowed(w, tcp('10.100.0.12', 'x/c')), true);
});

test('egress of a pod to its own node\'s address is judged like any egress', () => {
  const w = base([policy('x/eg', { policyTypes: ['Egress'], egress: [] })]);
  assert.equal(allowed(w, tcp('x/a', '10.100.0.11', 10250)), false);
});

test('a pod always reaches itself; a terminating pod still runs, so it is still matched; a finished one is no pod', () => {
  const w = base([policy('x/deny', { ingress: [], egress: [] })]);
  assert.equal(allowed(w, tcp('x/a', 'x/a')), true);
  const draining = pod('y/t', '10.244.2.9', { node: 'n2', terminating: true, labels: { pod: 'a' } });
  const sel = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: {} }] }] })], { pods: [draining] });
  assert.equal(allowed(sel, tcp('10.244.2.9', 'x/a')), true);
  assert.equal(evaluate(sel, tcp('10.244.2.9', 'x/a')).egress.pod, 'y/t');
  const done = { ...draining, status: { ...draining.status, phase: 'Succeeded' as const } };
  const gone = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: {} }] }] })], { pods: [done] });
  assert.equal(allowed(gone, tcp('10.244.2.9', 'x/a')), false);
  assert.equal(evaluate(gone, tcp('10.244.2.9', 'x/a')).egress.pod, undefined);
});

test('dual stack: a pod is matched by each of its addresses; ipBlock per family', () => {
  const d = pod('y/d', ['10.244.2.8', 'fd00:10:244:2::8'], { node: 'n2' });
  const w = base([policy('x/p', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }, { ipBlock: { cidr: 'fd00:99::/64' } }] }] })], {
    pods: [d, pod('x/d', ['10.244.1.8', 'fd00:10:244:1::8'])] });
  assert.equal(allowed(w, tcp('fd00:10:244:2:0:0:0:8', 'fd00:10:244:1::8')), true);
  assert.equal(allowed(w, tcp('fd00:99::1', 'fd00:10:244:1::8')), true);
  assert.equal(allowed(w, tcp('fd00:98::1', 'fd00:10:244:1::8')), false);
});

test('egress named port with an ipBlock peer: resolved on the pod at the destination address', () => {
  // The renderer's named-port set must hold every pod in the ipBlock, not only selector-picked ones.
  const w = base([policy('y/eg', { policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16' } }], ports: [{ protocol: 'TCP', port: 'http' }] }] })]);
  assert.deepEqual(evaluate(w, tcp('y/a', 'x/a', 8080)).egress.allowedBy, { policy: 'y/eg', rule: 0 });
  assert.equal(allowed(w, tcp('y/a', 'x/b', 9090)), true);
  assert.equal(allowed(w, tcp('y/a', 'x/b', 8080)), false);
  assert.equal(allowed(w, tcp('y/a', '10.244.9.9', 8080)), false, 'in the block, but no pod: no named port');
});
