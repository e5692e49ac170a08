// A dual-stack lab (backend auto on two segments): pods get an address of each family, IPv6 crosses
// nodes both ways the backend routes it (host-gw on segment a, VXLAN to node-3 behind the router) with
// the client's own pod address, `flatnet check` proves the rules in IPv6 too, and a restarted agent
// finds every route of both families in place.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor, type TestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import { podCIDRsOf, type Node, type Pod } from '../../src/api/types.js';

const scope = new TestScope('ds');
after(() => scope.cleanupSync());
let t: TestLab;
let pods: Pod[];
let nodes: Node[];

const PODS = ['node-1', 'node-2', 'node-3'].map((n, i) => `apiVersion: v1
kind: Pod
metadata: { name: web-${i + 1}, namespace: default }
spec: { nodeName: ${n}, containers: [{ name: web, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }] }
`).join('---\n') + `---
apiVersion: v1
kind: Pod
metadata: { name: duo, namespace: default }
spec:
  nodeName: node-3
  containers:
    - { name: a, command: [flatnet, serve, --port, "8081"], ports: [{ containerPort: 8081 }] }
    - { name: b, command: [flatnet, serve, --port, "9090/udp"], ports: [{ containerPort: 9090, protocol: UDP }] }
---
apiVersion: v1
kind: Pod
metadata: { name: host, namespace: default }
spec: { nodeName: node-1, hostNetwork: true, containers: [{ name: main, command: [sleep, infinity] }] }
`;

const nodeNs = (node: string) => t.lab.plan().nodes.find((n) => n.name === node)!.netns;
const v6Of = (name: string) => pods.find((p) => p.metadata.name === name)!.status!.podIPs!.map((x) => x.ip).find((ip) => ip.includes(':'))!;
const routes6 = (node: string) => execFileSync('ip', ['-n', nodeNs(node), '-6', 'route', 'show', 'proto', '77'], { encoding: 'utf8' });

before(async () => {
  t = labFor(scope, 'd');
  await t.lab.up({ ...cluster('auto'), clusterCIDR: '10.244.0.0/16,fd00:10:244::/56' });
  const file = join(scope.dir, 'pods.yaml');
  writeFileSync(file, PODS);
  const r = t.cli('apply', '-f', file);
  assert.equal(r.status, 0, r.stderr);
  const store = t.lab.store();
  try {
    pods = await waitPodsRunning(store, 5, 60_000);
    nodes = (await store.list('/registry/nodes/')).items.map((kv) => JSON.parse(kv.value) as Node);
  } finally { await store.close(); }
});

const cidr6Of = (node: string) => podCIDRsOf(nodes.find((n) => n.metadata.name === node)).find((c) => c.includes(':'))!;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('dual stack: every pod has an IPv4 and an IPv6 address; nodes have an InternalIP of each family', () => {
  for (const p of pods.filter((x) => !x.spec.hostNetwork)) {
    assert.deepEqual(p.status!.podIPs!.map((x) => (x.ip.includes(':') ? 6 : 4)), [4, 6], `${p.metadata.name}: ${JSON.stringify(p.status!.podIPs)}`);
  }
  const n1 = nodes.find((n) => n.metadata.name === 'node-1')!;
  assert.deepEqual(n1.status!.addresses!.filter((a) => a.type === 'InternalIP').map((a) => a.address), ['10.100.0.11', 'fdf0::a64:b']);
  assert.deepEqual(nodes.map((n) => podCIDRsOf(n).map((c) => (c.includes(':') ? 6 : 4))), [[4, 6], [4, 6], [4, 6]]);
});

test('IPv6 pod to pod across nodes: host-gw on the segment, VXLAN across the router, the server sees the client\'s own IPv6 address', () => {
  // node-1's IPv6 routes: node-2's pod CIDR via its IPv6 node address, node-3's through the VTEP.
  const r = routes6('node-1');
  assert.match(r, new RegExp(`^${escape(cidr6Of('node-2'))} via fdf0::a64:c dev eth0 `, 'm'), r);
  assert.match(r, new RegExp(`^${escape(cidr6Of('node-3'))} via ${escape(cidr6Of('node-3').split('/')[0])} dev flatnet\\.1 .*src fdf0::a64:b .*onlink`, 'm'), r);
  for (const to of ['web-2', 'web-3']) {
    const out = t.cli('exec', 'default/web-1', '--', 'flatnet', 'probe', `[${v6Of(to)}]:8080`, '--timeout', '3s', '--json');
    assert.equal(out.status, 0, `web-1 -> ${to}: ${out.stdout}${out.stderr}`);
    const answer = JSON.parse(out.stdout) as { answer: { pod: string; client: string } };
    assert.equal(answer.answer.client.replace(/^\[(.*)\]:\d+$/, '$1'), v6Of('web-1'), `${to} saw ${answer.answer.client}`);
  }
});

test('flatnet check passes every pod rule, with IPv6 probes listed beside the IPv4 ones', () => {
  const r = t.cli('check', '-v');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  for (const rule of [1, 2, 3, 4, 6]) {
    const section = r.stdout.split(/\n(?=\[)/).find((s) => s.startsWith(`[PASS] rule ${rule}:`));
    assert.ok(section, `rule ${rule} passed:\n${r.stdout}`);
    assert.match(section!, / over IPv6|external host fdf0::/, `rule ${rule} probed IPv6:\n${section}`);
  }
  assert.match(r.stdout, new RegExp(`default/web-1 -> default/web-3 over IPv6 \\(\\[${escape(v6Of('web-3'))}\\]:19999/tcp, cross-node\\): answered .* server saw ${escape(v6Of('web-1'))}\n`));
  assert.match(r.stdout, /external host fdf0::cb00:710a .* server saw fdf0::a64/, 'pods reach the outside over IPv6 masqueraded to their node\'s IPv6 address');
});

test('an agent killed and restarted finds every route of both families in place and writes none', async () => {
  const before4 = execFileSync('ip', ['-n', nodeNs('node-1'), 'route', 'show', 'proto', '77'], { encoding: 'utf8' });
  const before6 = routes6('node-1');
  await t.lab.stopAgent('node-1', 'SIGKILL');
  const logBefore = readFileSync(t.lab.logFile('agent-node-1'), 'utf8').length;
  await t.lab.startAgent('node-1');
  const logged = await until('the restarted agent\'s first route sync', () => {
    const text = readFileSync(t.lab.logFile('agent-node-1'), 'utf8').slice(logBefore);
    return /routes: /.test(text) && text;
  }, 20_000);
  assert.deepEqual(logged.split('\n').filter((l) => / routes: /.test(l)), [logged.split('\n').find((l) => / routes: \d+ in place, nothing written$/.test(l))],
    `the restarted agent wrote route changes:\n${logged}`);
  assert.match(logged, / routes: 4 in place, nothing written/, 'two peers, two families');
  assert.equal(execFileSync('ip', ['-n', nodeNs('node-1'), 'route', 'show', 'proto', '77'], { encoding: 'utf8' }), before4);
  assert.equal(routes6('node-1'), before6);
});
