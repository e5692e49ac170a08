// `flatnet trace` on one 3-node lab (two segments, auto backend: node-1 and node-2 share a segment and
// route directly, node-3 is reached by VXLAN), with real tagged packets: pod→pod on one node and across
// nodes, pod→ClusterIP naming the endpoint, a policy drop naming the policy, external→NodePort and
// pod→external with their masquerade, a stale route flagged, a removed route's kernel reason; the trace tables are gone after, also after SIGINT.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { TestScope } from '../helpers/scope.js';
import { CLI, cluster, labFor, type TestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { waitServiceProgrammed } from '../../src/lab/demo.js';
import type { TraceReport } from '../../src/trace/report.js';

const scope = new TestScope('trc');
after(() => scope.cleanupSync());
let t: TestLab;

const server = (name: string, node: string, labels: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default, labels: { ${labels} } }
spec: { nodeName: ${node}, containers: [{ name: s, command: [flatnet, serve, --port, "8080"], ports: [{ name: http, containerPort: 8080 }] }] }
`;
const MANIFEST = [
  server('web-1', 'node-1', 'app: web'),
  server('web-2', 'node-2', 'app: web'),
  server('web-3', 'node-3', 'app: web3'),
  server('locked', 'node-2', 'app: locked'),
  `apiVersion: v1
kind: Pod
metadata: { name: c1, namespace: default }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
`,
  `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: 10.96.0.60, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: http }] }
`,
  `apiVersion: v1
kind: Service
metadata: { name: web-np, namespace: default }
spec: { type: NodePort, selector: { app: web }, ports: [{ port: 80, targetPort: 8080, nodePort: 30090 }] }
`,
  `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: locked-down, namespace: default }
spec: { podSelector: { matchLabels: { app: locked } }, policyTypes: [Ingress], ingress: [{ from: [{ podSelector: { matchLabels: { role: friend } } }] }] }
`,
].join('---\n');

function trace(from: string, to: string): { status: number; report: TraceReport; stderr: string } {
  const r = t.cli('trace', from, to, '-o', 'json');
  assert.ok(r.stdout.trim().startsWith('{'), `flatnet trace ${from} ${to}: ${r.stderr}`);
  return { status: r.status, report: JSON.parse(r.stdout) as TraceReport, stderr: r.stderr };
}
const texts = (r: TraceReport) => r.hops.map((h) => `${h.node} ${h.text} ${h.object ?? ''}`);

before(async () => {
  t = labFor(scope, 't');
  await t.lab.up(cluster('auto'));
  await t.applyAndRun('trace.yaml', MANIFEST, 5, 60_000);
  await waitServiceProgrammed(t.lab, '10.96.0.60', 80, 2, 20_000);
});

test('pod→pod on one node: delivered straight to the destination veth, and the trace agrees', () => {
  const { status, report } = trace('default/c1', 'default/web-1');
  assert.equal(status, 0, JSON.stringify(report.disagreements));
  assert.equal(report.outcome, 'delivered');
  assert.deepEqual([...new Set(report.hops.map((h) => h.node))], ['node-1']);
  assert.ok(texts(report).some((l) => /local delivery to veth of default\/web-1/.test(l)), texts(report).join('\n'));
  assert.ok(report.hops.some((h) => h.kind === 'conntrack'), 'the conntrack entry is shown');
});

test('pod→pod across nodes: direct on the shared segment, VXLAN to the other segment', () => {
  const direct = trace('default/c1', 'default/web-2');
  assert.equal(direct.status, 0, JSON.stringify(direct.report.disagreements));
  assert.deepEqual([...new Set(direct.report.hops.map((h) => h.node))], ['node-1', 'node-2']);
  assert.ok(texts(direct.report).some((l) => /^node-1 route .*direct to node-2/.test(l)), texts(direct.report).join('\n'));
  const vxlan = trace('default/c1', 'default/web-3');
  assert.equal(vxlan.status, 0, JSON.stringify(vxlan.report.disagreements));
  assert.deepEqual([...new Set(vxlan.report.hops.map((h) => h.node))], ['node-1', 'node-3']);
  assert.ok(texts(vxlan.report).some((l) => /^node-1 route .*VXLAN vni \d+, outer 10\.100\.0\.11 → 10\.100\.1\.11 \(node-3\)/.test(l)), texts(vxlan.report).join('\n'));
  assert.ok(texts(vxlan.report).some((l) => /^node-3 out .*veth of default\/web-3/.test(l)), texts(vxlan.report).join('\n'));
});

test('pod→ClusterIP: the DNAT names the Service and the endpoint it chose, and conntrack shows the NAT', () => {
  const { status, report } = trace('default/c1', 'svc/default/web');
  assert.equal(status, 0, JSON.stringify(report.disagreements));
  assert.equal(report.outcome, 'delivered');
  assert.equal(report.service?.ref, 'default/web');
  assert.ok(['default/web-1', 'default/web-2'].includes(report.service?.endpointPod ?? ''), JSON.stringify(report.service));
  const ct = report.hops.find((h) => h.kind === 'conntrack' && h.node === 'node-1');
  assert.match(ct?.text ?? '', new RegExp(`original 10\\.244\\.\\d+\\.\\d+:\\d+ → 10\\.96\\.0\\.60:80, reply ${report.service!.endpoint.replace(/\./g, '\\.')}`));
});

test('a policy drop: dropped on the destination node, naming the isolating policy, as the evaluator expects', () => {
  const { status, report } = trace('default/c1', 'default/locked:8080');
  assert.equal(status, 0, JSON.stringify(report.disagreements));
  assert.equal(report.outcome, 'dropped');
  assert.equal(report.droppedBy?.node, 'node-2');
  assert.match(report.droppedBy?.object ?? '', /NetworkPolicy default\/locked-down/);
  const text = t.cli('trace', 'default/c1', 'default/locked:8080');
  assert.match(text.stdout, /DROPPED by nft inet flatnet-policy .*\[NetworkPolicy default\/locked-down: isolated, no rule allows\]/);
});

test('external→NodePort: the NodePort Service and its endpoint named, the masquerade shown', () => {
  const { status, report } = trace('external', 'node/node-1:30090');
  assert.equal(status, 0, JSON.stringify(report.disagreements));
  assert.equal(report.hops[0].node, 'node-1');
  assert.equal(report.service?.ref, 'default/web-np');
  assert.ok(report.hops.some((h) => h.node === 'node-1' && /^masquerade/.test(h.object ?? '')), texts(report).join('\n'));
  assert.ok(texts(report).some((l) => /^node-1 out .*source NAT to 10\.100\.0\.11:/.test(l)), texts(report).join('\n'));
});

test('pod→external: masqueraded to the node address on the way out (ICMP echo, tagged by its id)', () => {
  const { status, report } = trace('default/c1', `${t.lab.plan().external.ip}/icmp`);
  assert.equal(status, 0, JSON.stringify(report.disagreements));
  assert.equal(report.outcome, 'delivered');
  assert.ok(report.hops.some((h) => /^masquerade/.test(h.object ?? '')), texts(report).join('\n'));
  const ct = report.hops.find((h) => h.kind === 'conntrack');
  assert.match(ct?.text ?? '', /reply 203\.0\.113\.10 → 10\.100\.0\.11 id \d+/);
});

test('a stale route on node-1 is flagged as a disagreement (the agent stopped, so nothing repairs it)', async () => {
  const pods = JSON.parse(t.cli('get', 'pods', '-o', 'json').stdout) as { items: Array<{ metadata: { name: string }; status: { podIP: string } }> };
  const web2 = pods.items.find((p) => p.metadata.name === 'web-2')!.status.podIP;
  const nodeNs = `/run/netns/${t.lab.plan().nodes.find((n) => n.name === 'node-1')!.netns}`;
  await t.lab.stopAgent('node-1', 'SIGKILL');
  try {
    // A host route to web-2 through the router: the packet leaves node-1 for no node.
    execFileSync('nsenter', [`--net=${nodeNs}`, 'ip', 'route', 'replace', `${web2}/32`, 'via', '10.100.0.1', 'dev', 'eth0']);
    const { status, report } = trace('default/c1', 'default/web-2');
    assert.equal(status, 1, texts(report).join('\n'));
    assert.ok(texts(report).some((l) => /^node-1 route .* via 10\.100\.0\.1 dev eth0: via a gateway that is no node/.test(l)), texts(report).join('\n'));
    assert.equal(report.outcome, 'lost');
    assert.ok(report.disagreements.some((d) => /never reached node-2/.test(d)), report.disagreements.join('\n'));
    const text = t.cli('trace', 'default/c1', 'default/web-2');
    assert.match(text.stdout, /DISAGREES: the packet never reached node-2/);
  } finally {
    execFileSync('nsenter', [`--net=${nodeNs}`, 'ip', 'route', 'del', `${web2}/32`]);
    await t.lab.startAgent('node-1');
    await t.lab.waitNodesReady(['node-1'], 20_000);
  }
});

test('a drop no rule explains: the route to node-2\'s pod CIDR removed on node-1, the kernel\'s reason shown', async () => {
  const nodes = JSON.parse(t.cli('get', 'nodes', '-o', 'json').stdout) as { items: Array<{ metadata: { name: string }; spec: { podCIDR?: string } }> };
  const cidr = nodes.items.find((n) => n.metadata.name === 'node-2')!.spec.podCIDR!;
  const nodeNs = `/run/netns/${t.lab.plan().nodes.find((n) => n.name === 'node-1')!.netns}`;
  const ip = (...args: string[]) => execFileSync('nsenter', [`--net=${nodeNs}`, 'ip', ...args], { encoding: 'utf8' });
  const saved = ip('route', 'show', cidr).trim();
  assert.ok(saved, `node-1 routes ${cidr}`);
  await t.lab.stopAgent('node-1', 'SIGKILL');
  try {
    ip('route', 'del', cidr);
    const { status, report } = trace('default/c1', 'default/web-2');
    assert.equal(status, 1, texts(report).join('\n'));
    assert.equal(report.outcome, 'lost');
    assert.equal(report.kernelReason?.node, 'node-1', JSON.stringify(report.kernelReason));
    assert.match(report.kernelReason?.reason ?? '', /^no route to 10\.244\.\d+\.\d+: Network is unreachable/, JSON.stringify(report.kernelReason));
    // Wherever the kernel says it: node-1 itself, or the router its default route leads to.
    assert.ok(report.disagreements.some((d) => /kernel dropped it (on node-1|past node-1, at the router): no route to/.test(d)), report.disagreements.join('\n'));
    const text = t.cli('trace', 'default/c1', 'default/web-2');
    assert.match(text.stdout, /^result: lost (on node-1|past node-1, at the router) \(kernel: no route to 10\.244\.\d+\.\d+: Network is unreachable, asked in \S+\)/m);
  } finally {
    ip('route', 'replace', ...saved.split(/\s+/));
    await t.lab.startAgent('node-1');
    await t.lab.waitNodesReady(['node-1'], 20_000);
  }
  const again = trace('default/c1', 'default/web-2');
  assert.equal(again.report.outcome, 'delivered', texts(again.report).join('\n'));
  assert.equal(again.status, 0, JSON.stringify(again.report.disagreements));
});

test('an interrupted trace removes its tables: SIGINT while the dropped SYN waits for an answer', async () => {
  const nodes = t.lab.plan().nodes;
  const tables = () => nodes.map((n) => execFileSync('nsenter', [`--net=/run/netns/${n.netns}`, 'nft', 'list', 'tables'], { encoding: 'utf8' })).join('');
  const child = spawn(process.execPath, [CLI, '--lab', t.lab.name, '--state-dir', t.lab.root, 'trace', 'default/c1', 'default/locked:8080'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until('the trace armed on every node', () => (tables().match(/flatnet-trace-\d+\n/g) ?? []).length >= nodes.length, 20_000, 20);
  process.kill(child.pid!, 'SIGINT');
  assert.equal(await exited, 130);
  assert.doesNotMatch(tables(), /flatnet-trace/);
});

test('no trace table is left on any node', () => {
  for (const node of t.lab.plan().nodes) {
    const tables = execFileSync('nsenter', [`--net=/run/netns/${node.netns}`, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    assert.doesNotMatch(tables, /flatnet-trace/, `${node.name}: ${tables}`);
  }
});
