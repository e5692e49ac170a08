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

/** The same cluster in dual stack: nodes and pods have an address of each family, the external host too. */
const dualInputs = (): CheckInputs => {
  const inp = inputs();
  inp.clusterCIDRs.push('fd00:10:244::/56');
  inp.nodes[0] = { ...inp.nodes[0], nodeIPv6: 'fdf0::a64:b', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] };
  inp.nodes[1] = { ...inp.nodes[1], nodeIPv6: 'fdf0::a64:10b', podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'] };
  inp.pods[0].ips.push('fd00:10:244:1::2');
  inp.pods[1].ips.push('fd00:10:244:2::2');
  inp.external = { ...inp.external!, ip6: 'fdf0::cb00:710a' };
  return inp;
};

test('planProbes in dual stack: every pod rule is probed in each family, IPv6 probes labelled and expecting IPv6 sources', () => {
  const probes = planProbes(dualInputs(), 19999);
  const count = (rule: number, family: 4 | 6) => probes.filter((p) => p.rule === rule && p.family === family).length;
  for (const [rule, n] of [[1, 2], [2, 4], [3, 2], [4, 1], [6, 2]] as const) {
    assert.deepEqual([count(rule, 4), count(rule, 6)], [n, n], `rule ${rule}`);
  }
  const ab6 = probes.find((p) => p.rule === 1 && p.family === 6 && p.clientLabel === 'default/a')!;
  assert.deepEqual([ab6.host, ab6.expectClient, ab6.serverLabel, ab6.crossNode], ['fd00:10:244:2::2', 'fd00:10:244:1::2', 'default/b over IPv6', true]);
  assert.equal(probes.find((p) => p.rule === 3 && p.family === 6)!.expectClient, 'fdf0::a64:b');
  assert.equal(probes.find((p) => p.rule === 4 && p.family === 6)!.host, '::1');
  const ext6 = probes.find((p) => p.rule === 6 && p.family === 6 && p.clientLabel === 'default/b')!;
  assert.deepEqual([ext6.host, ext6.expectClient], ['fdf0::cb00:710a', 'fdf0::a64:10b']);
  // The IPv4 probes come first and are the single-stack plan unchanged.
  assert.deepEqual(probes.filter((p) => p.family === 4).map((p) => `${p.rule} ${p.clientLabel} ${p.host}`),
    planProbes(inputs(), 19999).map((p) => `${p.rule} ${p.clientLabel} ${p.host}`));
  // An IPv6 probe that fails names its family and bracketed address.
  const results: ProbeResult[] = probes.map((p) => ({ id: p.id, ok: p !== ab6, client: p.expectClient ?? 'fdf0::a64:b', ms: 1, error: p === ab6 ? 'timeout after 2000 ms' : undefined }));
  const rule1 = judge(dualInputs(), probes, results)[0];
  assert.deepEqual(rule1.failures, ['default/a -> default/b over IPv6 ([fd00:10:244:2::2]:19999/tcp, cross-node): timeout after 2000 ms']);
  // An external host without IPv6 gets IPv4 masquerade probes only.
  const noExt6 = dualInputs();
  delete noExt6.external!.ip6;
  assert.deepEqual([4, 6].map((f) => planProbes(noExt6, 19999).filter((p) => p.rule === 6 && p.family === f).length), [2, 0]);
});

test('checkAddresses in dual stack: a pod without an address of one of its node\'s families is named', () => {
  assert.deepEqual(checkAddresses(dualInputs()).failures, []);
  const half = dualInputs();
  half.pods[1].ips = ['10.244.2.2'];
  assert.deepEqual(checkAddresses(half).failures, ['pod default/b has no IPv6 address, though node n2 has pod CIDR fd00:10:244:2::/64']);
});
