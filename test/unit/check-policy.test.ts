// flatnet check's NetworkPolicy rules, pure: which pairs rules 1-3 and 6 leave out, which pairs rule 11
// samples (every isolated pod in each verdict it has, at most 200), and how its answers are judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, planProbes, type CheckInputs, type CheckPod, type ProbeResult } from '../../src/check/model.js';
import { DENIED_TIMEOUT_MS, MAX_POLICY_PROBES, judgePolicy, planPolicyProbes, serviceProbesWithoutDenied, withoutDenied, type PolicyProbe } from '../../src/check/policy.js';
import type { ServiceProbe } from '../../src/check/services.js';
import { evaluate } from '../../src/policy/evaluate.js';
import type { Namespace, NetworkPolicy, Node, Pod } from '../../src/api/types.js';

const NODES = [{ name: 'n1', ip: '10.100.0.11', cidr: '10.244.1.0/24' }, { name: 'n2', ip: '10.100.0.12', cidr: '10.244.2.0/24' }];

interface PodDef { ns: string; name: string; node: string; ip: string; labels?: Record<string, string>; ports?: Array<{ name: string; port: number; protocol?: 'TCP' | 'UDP' }>; hostNetwork?: boolean }

function world(defs: PodDef[], policies: NetworkPolicy[]): CheckInputs {
  const pods: Pod[] = defs.map((d) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: d.name, namespace: d.ns, uid: `${d.ns}-${d.name}`, labels: d.labels ?? { app: d.name } },
    spec: { nodeName: d.node, hostNetwork: d.hostNetwork, containers: [{ name: 'c', ports: (d.ports ?? []).map((p) => ({ name: p.name, containerPort: p.port, protocol: p.protocol ?? 'TCP' })) }] },
    status: { phase: 'Running', podIP: d.ip, podIPs: [{ ip: d.ip }] },
  }));
  const nodes: Node[] = NODES.map((n) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name }, spec: { podCIDR: n.cidr, podCIDRs: [n.cidr] }, status: { addresses: [{ type: 'InternalIP', address: n.ip }] } }));
  const namespaces: Namespace[] = [...new Set(defs.map((d) => d.ns))].map((ns) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }));
  const checkPods: CheckPod[] = defs.map((d) => ({
    namespace: d.ns, name: d.name, node: d.node, ips: [d.ip], hostNetwork: !!d.hostNetwork, netns: d.hostNetwork ? `l-${d.node}` : `l-${d.ns}-${d.name}`, ready: true,
    containers: [{ name: 'c', ports: (d.ports ?? []).map((p) => ({ port: p.port, protocol: (p.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp' })) }],
  }));
  return {
    clusterCIDRs: ['10.244.0.0/16'], pods: checkPods, external: { netns: 'l-ext', ip: '203.0.113.10' },
    nodes: NODES.map((n) => ({ name: n.name, nodeIP: n.ip, podCIDRs: [n.cidr], netns: `l-${n.name}` })),
    policy: { namespaces, pods, nodes, policies },
  };
}

const policy = (ns: string, name: string, spec: Partial<NetworkPolicy['spec']>): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns },
  spec: { podSelector: {}, policyTypes: ['Ingress'], ...spec },
});
const HTTP = [{ name: 'http', port: 8080 }];
const PODS: PodDef[] = [
  { ns: 'x', name: 'a', node: 'n1', ip: '10.244.1.2', ports: HTTP },
  { ns: 'x', name: 'b', node: 'n2', ip: '10.244.2.2', ports: HTTP },
  { ns: 'y', name: 'a', node: 'n1', ip: '10.244.1.3', ports: HTTP },
  { ns: 'y', name: 'b', node: 'n2', ip: '10.244.2.3' },
  { ns: 'y', name: 'h', node: 'n2', ip: '10.100.0.12', hostNetwork: true },
];
/** x isolated for ingress; y may reach x's named port http (8080), nothing else. */
const X_FROM_Y = [
  policy('x', 'deny', {}),
  policy('x', 'from-y', { ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }], ports: [{ protocol: 'TCP', port: 'http' }] }] }),
];

test('without policies nothing is left out and rule 11 plans nothing', () => {
  const inp = world(PODS, []);
  const probes = planProbes(inp, 19999);
  assert.equal(withoutDenied(inp, probes).probes.length, probes.length);
  assert.deepEqual(planPolicyProbes(inp, 19999, 0), { probes: [], candidates: 0 });
});

test('rules 1-3 and 6 leave out the pairs the evaluator denies; a node still reaches its own pods', () => {
  const inp = world(PODS, X_FROM_Y);
  const all = planProbes(inp, 19999);
  const { probes, excluded } = withoutDenied(inp, all);
  const into = (rule: number, server: string) => probes.filter((p) => p.rule === rule && p.serverLabel === server).map((p) => p.clientLabel).sort();
  // Rule 1 on the check port: nothing reaches x (y is allowed only on 8080); x reaches everything.
  assert.deepEqual(into(1, 'x/a'), []);
  assert.deepEqual(into(1, 'y/b'), ['x/a', 'x/b', 'y/a']);
  // Rule 2: n1 reaches x/a (its own pod), n2 does not; rule 3's host-network pod is n2's address.
  assert.deepEqual(into(2, 'x/a'), ['node n1']);
  assert.deepEqual(into(3, 'x/a'), []);
  assert.deepEqual(into(3, 'x/b').length, 1, 'y/h runs on n2, x/b\'s node');
  assert.equal(probes.filter((p) => p.rule === 6).length, 4, 'egress is not isolated');
  assert.deepEqual(Object.fromEntries(excluded), { 1: 6, 2: 2, 3: 1 });
  assert.equal(all.length - probes.length, 9);

  const results: ProbeResult[] = probes.map((p) => ({ id: p.id, ok: true, client: p.expectClient, ms: 1 }));
  const rules = judge(inp, probes, results, excluded);
  assert.equal(rules[0].status, 'pass');
  assert.match(rules[0].evidence[0], /^6\/6 probes passed; 6 pairs left out: NetworkPolicy denies them \(rule 11\)$/);
});

test('rule 11 probes both verdicts of each isolated pod, denied ones with one short attempt, each as the evaluator says', () => {
  const inp = world(PODS, X_FROM_Y);
  const { probes, candidates } = planPolicyProbes(inp, 19999, 100);
  // Only pairs a policy isolates: into x/a and x/b (ingress), from 3 pods each, on the check port and http.
  assert.equal(candidates, 2 * 3 * 2);
  assert.equal(probes.length, candidates, 'small enough to probe every pair');
  assert.deepEqual(probes.map((p) => p.id), probes.map((_, i) => 100 + i));
  for (const p of probes) {
    const v = evaluate(inp.policy!, { from: p.source!, to: p.host, port: p.port, protocol: p.protocol === 'tcp' ? 'TCP' : 'UDP' });
    assert.equal(p.allowed, v.allowed, `${p.clientLabel} -> ${p.serverLabel}:${p.port}`);
    if (!p.allowed) {
      assert.deepEqual([p.timeoutMs, p.attempts], [DENIED_TIMEOUT_MS, 1]);
      assert.deepEqual(p.enforcers, [p.serverLabel === 'x/a' ? 'n1' : 'n2'], 'ingress is enforced on the destination\'s node');
    }
  }
  const to = (pod: string, allowed: boolean) => probes.filter((p) => p.serverLabel === pod && p.allowed === allowed).map((p) => `${p.clientLabel}:${p.port}`).sort();
  assert.deepEqual(to('x/a', true), ['y/a:8080', 'y/b:8080']);
  assert.ok(to('x/a', false).includes('x/b:8080') && to('x/a', false).includes('y/a:19999'));
  assert.match(probes.find((p) => p.serverLabel === 'x/a' && p.allowed)!.why, /ingress allowed by x\/from-y rule 0/);
  assert.match(probes.find((p) => p.serverLabel === 'x/a' && !p.allowed)!.why, /ingress isolated by x\/deny, x\/from-y, none allows/);
});

test('rule 11 samples a large matrix: at most 200 probes, every isolated pod in each verdict it has, the same sample each time', () => {
  const defs: PodDef[] = [];
  for (let i = 0; i < 40; i++) {
    const ns = ['p', 'q', 'r', 's'][i % 4];
    defs.push({ ns, name: `w${i}`, node: NODES[i % 2].name, ip: `10.244.${(i % 2) + 1}.${10 + i}`, labels: { app: `w${i}`, tier: i % 3 === 0 ? 'db' : 'web' }, ports: HTTP });
  }
  const policies = [
    policy('p', 'db-only-from-web', { podSelector: { matchLabels: { tier: 'db' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { tier: 'web' } } }] }] }),
    policy('q', 'no-egress', { podSelector: { matchLabels: { tier: 'web' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'r' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }] }),
  ];
  const inp = world(defs, policies);
  const { probes, candidates } = planPolicyProbes(inp, 19999, 0);
  assert.ok(candidates > MAX_POLICY_PROBES && candidates < 40 * 39 * 2, `${candidates} pairs have an isolated end`);
  assert.equal(probes.length, MAX_POLICY_PROBES);
  assert.ok(probes.every((p) => /allowed by|isolated by/.test(p.why)), 'pairs no policy touches are rule 1\'s');
  assert.deepEqual(planPolicyProbes(inp, 19999, 0).probes, probes, 'deterministic');
  const isolatedIngress = defs.filter((d) => d.ns === 'p' && d.labels!.tier === 'db').map((d) => `${d.ns}/${d.name}`);
  const isolatedEgress = defs.filter((d) => d.ns === 'q' && d.labels!.tier === 'web').map((d) => `${d.ns}/${d.name}`);
  assert.ok(isolatedIngress.length > 0 && isolatedEgress.length > 0);
  for (const pod of isolatedIngress) {
    for (const allowed of [true, false]) assert.ok(probes.some((p) => p.serverLabel === pod && p.allowed === allowed), `${pod} as destination, ${allowed ? 'allowed' : 'denied'}`);
  }
  for (const pod of isolatedEgress) {
    for (const allowed of [true, false]) assert.ok(probes.some((p) => p.clientLabel === pod && p.allowed === allowed), `${pod} as source, ${allowed ? 'allowed' : 'denied'}`);
  }
});

test('rule 11 judges: allowed must answer; denied must time out (an answer or a refusal got through) and the failure names the node', () => {
  const inp = world(PODS, X_FROM_Y);
  const { probes } = planPolicyProbes(inp, 19999, 0);
  const ok = (p: PolicyProbe): ProbeResult => (p.allowed ? { id: p.id, ok: true, ms: 2, server: p.serverLabel } : { id: p.id, ok: false, error: 'timeout after 1000 ms', ms: 1000 });
  const good = judgePolicy(probes, probes.map(ok), probes.length);
  assert.equal(good.status, 'pass');
  assert.equal(good.rule, 11);
  const allowed = probes.filter((p) => p.allowed).length;
  assert.equal(good.evidence[0], `${allowed}/${allowed} allowed pairs connected, ${probes.length - allowed}/${probes.length - allowed} denied pairs dropped`);

  // n2 forgets its table: what was denied into x/b answers; one allowed pair times out.
  const broken = probes.map((p) => (p.serverLabel === 'x/b' && !p.allowed ? { id: p.id, ok: true, ms: 3, server: 'x/b' } : ok(p)));
  const refused = probes.find((p) => p.serverLabel === 'x/a' && !p.allowed)!;
  const slow = probes.find((p) => p.allowed)!;
  broken[refused.id] = { id: refused.id, ok: false, error: 'ECONNREFUSED', ms: 1 };
  broken[slow.id] = { id: slow.id, ok: false, error: 'timeout after 2000 ms', ms: 2000 };
  const bad = judgePolicy(probes, broken, 400);
  assert.equal(bad.status, 'fail');
  const intoB = bad.failures.filter((f) => / -> x\/b /.test(f));
  assert.ok(intoB.length > 0 && intoB.every((f) => /denied by policy but answered by x\/b in 3 ms: node n2 does not enforce it/.test(f)), intoB.join('\n'));
  assert.ok(bad.failures.some((f) => f.includes('ECONNREFUSED (not a silent drop): node n1 does not enforce it')));
  assert.ok(bad.failures.some((f) => f.startsWith(`${slow.clientLabel} -> ${slow.serverLabel} `) && /allowed by policy but timeout after 2000 ms/.test(f)));
  assert.match(bad.evidence[0], /a sample of \d+ of 400 pairs/);
});

test('rules 7-9 leave out a client-service pair whose backends the policies deny the client, judged on the backends\' own port', () => {
  const inp = world(PODS, X_FROM_Y);
  inp.services = [{
    id: 'x/web', clusterIP: '10.96.0.10', type: 'ClusterIP', internalLocal: false, externalLocal: false, sticky: false,
    ports: [{ name: 'http', protocol: 'tcp', port: 80 }],
    endpoints: new Map([['http', [{ pod: 'x/a', ip: '10.244.1.2', node: 'n1', port: 8080 }, { pod: 'x/b', ip: '10.244.2.2', node: 'n2', port: 8080 }]]]),
  }, {
    id: 'x/gone', clusterIP: '10.96.0.11', type: 'ClusterIP', internalLocal: false, externalLocal: false, sticky: false,
    ports: [{ name: '', protocol: 'tcp', port: 80 }], endpoints: new Map([['', []]]),
  }];
  let id = 0;
  const probe = (rule: 7 | 9 | 10, client: string, host = '10.96.0.10'): ServiceProbe => ({
    id: id++, rule, clientNetns: 'ns', clientLabel: client, host, port: 80, protocol: 'tcp', group: `${host} from ${client}`,
    ...(rule === 10 ? { expectRefused: true } : { expectServers: ['x/a', 'x/b'] }),
  });
  const probes = [probe(7, 'y/a'), probe(7, 'y/a'), probe(7, 'node n1'), probe(7, 'node n1'), probe(9, 'x/a'), probe(10, 'y/b', '10.96.0.11')];
  const { probes: kept, excluded } = serviceProbesWithoutDenied(inp, probes);
  // y may reach x's http (8080, the backends' port behind Service port 80); n1 reaches its own x/a, not n2's x/b; x/a not x/b.
  assert.deepEqual(kept.map((p) => `${p.rule} ${p.clientLabel}`), ['7 y/a', '7 y/a', '10 y/b']);
  assert.deepEqual(Object.fromEntries(excluded), { 7: 1, 9: 1 });
  assert.equal(serviceProbesWithoutDenied(world(PODS, []), probes).probes.length, probes.length, 'no policies: nothing left out');
});
