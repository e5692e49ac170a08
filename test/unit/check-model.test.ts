// The check's plan and judgement: which probes each rule needs, and what counts as a pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAddresses, judge, planProbes, type CheckInputs, type ProbeResult } from '../../src/check/model.js';

const inputs = (): CheckInputs => ({
  clusterCIDRs: ['10.244.0.0/16'],
  nodes: [
    { name: 'n1', nodeIP: '10.100.0.11', podCIDRs: ['10.244.1.0/24'], netns: 'l-n1' },
    { name: 'n2', nodeIP: '10.100.1.11', podCIDRs: ['10.244.2.0/24'], netns: 'l-n2' },
  ],
  pods: [
    { namespace: 'default', name: 'a', node: 'n1', ips: ['10.244.1.2'], hostNetwork: false, netns: 'l-p-a', containers: [{ name: 'c', ports: [] }] },
    { namespace: 'default', name: 'b', node: 'n2', ips: ['10.244.2.2'], hostNetwork: false, netns: 'l-p-b',
      containers: [{ name: 'web', ports: [{ port: 8080, protocol: 'tcp' }] }, { name: 'side', ports: [] }] },
    { namespace: 'default', name: 'h', node: 'n1', ips: ['10.100.0.11'], hostNetwork: true, netns: 'l-n1', containers: [{ name: 'c', ports: [] }] },
  ],
  external: { netns: 'l-ext', ip: '203.0.113.10' },
});

test('planProbes: pod pairs both ways, node to every pod, host-network pod, localhost ports, external', () => {
  const probes = planProbes(inputs(), 19999);
  const count = (rule: number) => probes.filter((p) => p.rule === rule).length;
  assert.equal(count(1), 2);
  assert.equal(count(2), 4);
  assert.equal(count(3), 2);
  assert.equal(count(4), 1);
  assert.equal(count(6), 2);
  const ab = probes.find((p) => p.rule === 1 && p.clientLabel === 'default/a')!;
  assert.deepEqual([ab.host, ab.expectClient, ab.crossNode], ['10.244.2.2', '10.244.1.2', true]);
  const h = probes.find((p) => p.rule === 3)!;
  assert.equal(h.expectClient, '10.100.0.11');
  assert.equal(probes.find((p) => p.rule === 6 && p.clientLabel === 'default/b')!.expectClient, '10.100.1.11');
  assert.deepEqual(probes.map((p) => p.id), probes.map((_, i) => i));
});

test('judge: a probe answered with a translated source fails rule 1 and names the pair', () => {
  const inp = inputs();
  const probes = planProbes(inp, 19999);
  const results: ProbeResult[] = probes.map((p) => ({ id: p.id, ok: true, client: p.expectClient ?? '10.100.0.11', ms: 1 }));
  const ab = probes.find((p) => p.rule === 1 && p.clientLabel === 'default/a')!;
  results[ab.id] = { id: ab.id, ok: true, client: '10.100.0.11', ms: 1 };
  const rules = judge(inp, probes, results);
  assert.equal(rules[0].status, 'fail');
  assert.match(rules[0].failures[0], /default\/a -> default\/b .*cross-node.*saw client 10\.100\.0\.11, expected 10\.244\.1\.2 \(NAT/);
  assert.equal(rules[1].status, 'pass');
  assert.equal(rules[5].status, 'fail', 'rule 6 needs rule 1');
});

test('judge: unanswered probes fail with their error; all answered passes every rule', () => {
  const inp = inputs();
  const probes = planProbes(inp, 19999);
  const good: ProbeResult[] = probes.map((p) => ({ id: p.id, ok: true, client: p.expectClient ?? '10.100.0.11', ms: 1 }));
  assert.ok(judge(inp, probes, good).every((r) => r.status === 'pass'));
  const bad = good.map((r) => (probes[r.id].rule === 2 && probes[r.id].crossNode ? { id: r.id, ok: false, error: 'timeout after 2000 ms' } : r));
  const rules = judge(inp, probes, bad);
  assert.equal(rules[1].status, 'fail');
  assert.equal(rules[1].failures.length, 2);
  assert.match(rules[1].failures[0], /timeout after 2000 ms/);
});

test('judge: rules with nothing to probe are skipped, not passed', () => {
  const inp = inputs();
  inp.pods = inp.pods.filter((p) => !p.hostNetwork && p.name !== 'b');
  delete inp.external;
  const rules = judge(inp, planProbes(inp, 1), []);
  assert.deepEqual(rules.map((r) => r.status), ['skip', 'fail', 'skip', 'skip', 'pass', 'skip']);
});

test('checkAddresses: overlapping node CIDRs, a pod outside its node CIDR, a shared IP and a CIDR outside the cluster', () => {
  const inp = inputs();
  inp.nodes[1].podCIDRs = ['10.244.1.128/25'];
  inp.nodes.push({ name: 'n3', nodeIP: '10.100.0.13', podCIDRs: ['10.245.0.0/24'], netns: 'l-n3' });
  inp.pods[1].ips = ['10.244.1.2'];
  const { failures } = checkAddresses(inp);
  assert.ok(failures.some((f) => /n1 \(10\.244\.1\.0\/24\) and n2 \(10\.244\.1\.128\/25\) overlap/.test(f)), failures.join('\n'));
  assert.ok(failures.some((f) => /share IP 10\.244\.1\.2/.test(f)));
  assert.ok(failures.some((f) => /default\/b: IP 10\.244\.1\.2 is outside node n2's pod CIDR/.test(f)));
  assert.ok(failures.some((f) => /n3: pod CIDR 10\.245\.0\.0\/24 is outside the cluster CIDR/.test(f)));
  assert.deepEqual(checkAddresses(inputs()).failures, []);
});
