// NetworkPolicy on a 3-node lab, judged as the upstream e2e suite does: namespaces x, y, z with pods a,
// b, c, the full 9×9 matrix probed with real connections for each case and compared with the
// evaluator's table on the live objects (polled until in effect, never slept on); then isolation
// before a pod's first packet, an established connection cut, and `flatnet check` failing for a node
// whose policy table is gone. One lab for the file; policies are deleted between cases.
import { test, after, afterEach, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { PEERS, PolicyLab, type Truth } from '../helpers/policy-lab.js';
import { waitServiceProgrammed } from '../../src/lab/demo.js';
import { livePid } from '../../src/lab/processes.js';
import type { Pod } from '../../src/api/types.js';
import { objectKey } from '../../src/api/keys.js';

const scope = new TestScope('pol');
let pl: PolicyLab;
const t0 = Date.now();
after(() => { pl?.close(); scope.cleanupSync(); console.log(`# policy-matrix: ${((Date.now() - t0) / 1000).toFixed(1)} s`); });

const SERVICE_IP = '10.96.0.80';
const X_SERVICE_IP = '10.96.0.81';
const policy = (name: string, ns: string, spec: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec: ${spec}\n`;
const DENY_INGRESS_X = policy('deny-ingress', 'x', '{ podSelector: {}, policyTypes: [Ingress] }');
const DENY_EGRESS_X = policy('deny-egress', 'x', '{ podSelector: {}, policyTypes: [Egress] }');
const nsSel = (ns: string) => `{ matchLabels: { kubernetes.io/metadata.name: ${ns} } }`;
/** Pairs of the table that reach, as "from>to", for messages and assertions that name them. */
const reaching = (t: Truth, from: (p: string) => boolean, to: (p: string) => boolean) =>
  PEERS.flatMap((f, i) => PEERS.filter((tt, j) => from(f) && to(tt) && t[i][j]).map((tt) => `${f}>${tt}`));
const inNs = (ns: string) => (p: string) => p.startsWith(`${ns}/`);
const any = () => true;

before(async () => {
  pl = await PolicyLab.up(scope, 'm');
  pl.apply('service.yaml', `apiVersion: v1\nkind: Service\nmetadata: { name: b, namespace: y }\nspec: { clusterIP: ${SERVICE_IP}, selector: { pod: b }, ports: [{ port: 8080, targetPort: 80 }] }\n`);
  await waitServiceProgrammed(pl.t.lab, SERVICE_IP, 8080, 1, 15_000);
  // x/a behind a Service (a named target port), for the hairpin case and the check's rules 7 and 9.
  pl.apply('x-service.yaml', `apiVersion: v1\nkind: Service\nmetadata: { name: a, namespace: x }\nspec: { clusterIP: ${X_SERVICE_IP}, selector: { pod: a }, ports: [{ port: 8080, targetPort: serve-80-tcp }] }\n`);
  await waitServiceProgrammed(pl.t.lab, X_SERVICE_IP, 8080, 1, 15_000);
});
afterEach(() => pl.deleteAllPolicies());

test('without policies every pod reaches every pod, on 80 and 81, TCP and UDP', async () => {
  for (const [port, proto] of [[80, 'tcp'], [81, 'tcp'], [80, 'udp'], [81, 'udp']] as const) {
    const s0 = Date.now();
    const t = await pl.assertMatrix(port, proto);
    console.log(`# ${proto}/${port}: ${Date.now() - s0} ms`);
    assert.equal(reaching(t, any, any).length, 81, `${proto}/${port}`);
  }
});

test('default deny ingress in x: nothing reaches x but x itself by loopback; x reaches out', async () => {
  pl.applyPolicies('deny-ingress.yaml', DENY_INGRESS_X);
  const t = await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(reaching(t, any, inNs('x')), ['x/a>x/a', 'x/b>x/b', 'x/c>x/c']);
  assert.equal(reaching(t, inNs('x'), (p) => !p.startsWith('x/')).length, 18);
  await pl.assertMatrix(81, 'udp');
});

test('default deny egress in x: x reaches nothing but itself; others reach x', async () => {
  pl.applyPolicies('deny-egress.yaml', DENY_EGRESS_X);
  const t = await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(reaching(t, inNs('x'), any), ['x/a>x/a', 'x/b>x/b', 'x/c>x/c']);
  assert.equal(reaching(t, (p) => !p.startsWith('x/'), inNs('x')).length, 18);
  await pl.assertMatrix(80, 'udp');
});

test('default deny all in x (one policy, both types)', async () => {
  pl.applyPolicies('deny-all.yaml', policy('deny-all', 'x', '{ podSelector: {}, policyTypes: [Ingress, Egress] }'));
  const t = await pl.assertMatrix(81, 'tcp');
  assert.equal(reaching(t, any, any).length, 81 - 3 * 6 * 2 - 6);
  await pl.assertMatrix(81, 'udp');
});

test('allow from namespace y by its kubernetes.io/metadata.name label', async () => {
  pl.applyPolicies('from-y.yaml', [DENY_INGRESS_X, policy('from-y', 'x', `{ podSelector: {}, ingress: [{ from: [{ namespaceSelector: ${nsSel('y')} }] }] }`)].join('---\n'));
  const t = await pl.assertMatrix(80, 'tcp');
  assert.equal(reaching(t, inNs('y'), inNs('x')).length, 9);
  assert.equal(reaching(t, inNs('z'), inNs('x')).length, 0);
});

test('pod AND namespace selectors in one peer, then the same as two peers (OR)', async () => {
  pl.applyPolicies('and.yaml', policy('to-a', 'x', `{ podSelector: { matchLabels: { pod: a } }, ingress: [{ from: [{ namespaceSelector: ${nsSel('y')}, podSelector: { matchLabels: { pod: b } } }] }] }`));
  const and = await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(reaching(and, (p) => p !== 'x/a', (p) => p === 'x/a'), ['y/b>x/a']);
  pl.applyPolicies('or.yaml', policy('to-a', 'x', `{ podSelector: { matchLabels: { pod: a } }, ingress: [{ from: [{ namespaceSelector: ${nsSel('y')} }, { podSelector: { matchLabels: { pod: b } } }] }] }`));
  const or = await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(reaching(or, (p) => p !== 'x/a', (p) => p === 'x/a'), ['x/b>x/a', 'y/a>x/a', 'y/b>x/a', 'y/c>x/a']);
});

test('a named port: serve-80-tcp is allowed into x, 81 and UDP 80 are not', async () => {
  pl.applyPolicies('named.yaml', policy('web', 'x', '{ podSelector: {}, ingress: [{ ports: [{ port: serve-80-tcp }] }] }'));
  assert.equal(reaching(await pl.assertMatrix(80, 'tcp'), any, inNs('x')).length, 27);
  assert.equal(reaching(await pl.assertMatrix(81, 'tcp'), any, inNs('x')).length, 3);
  assert.equal(reaching(await pl.assertMatrix(80, 'udp'), any, inNs('x')).length, 3);
});

test('endPort: TCP 80-81 from z only', async () => {
  pl.applyPolicies('range.yaml', policy('range', 'x', `{ podSelector: {}, ingress: [{ from: [{ namespaceSelector: ${nsSel('z')} }], ports: [{ port: 80, endPort: 81, protocol: TCP }] }] }`));
  for (const port of [80, 81]) {
    const t = await pl.assertMatrix(port, 'tcp');
    assert.equal(reaching(t, inNs('z'), inNs('x')).length, 9, `TCP ${port}`);
    assert.equal(reaching(t, inNs('y'), inNs('x')).length, 0, `TCP ${port}`);
  }
  assert.equal(reaching(await pl.assertMatrix(81, 'udp'), inNs('z'), inNs('x')).length, 0);
});

test('ipBlock with except: y/a and y/b excepted, a second peer allows y/b back', async () => {
  const spec = `{ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: 10.244.0.0/16, except: [${pl.ipOf('y/a')}/32, ${pl.ipOf('y/b')}/32] } }, { namespaceSelector: ${nsSel('y')}, podSelector: { matchLabels: { pod: b } } }] }] }`;
  pl.applyPolicies('ipblock.yaml', policy('cidr', 'x', spec));
  const t = await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(reaching(t, inNs('y'), (p) => p === 'x/c'), ['y/b>x/c', 'y/c>x/c']);
});

test('egress to a Service: judged after DNAT against its backend y/b and port 80', async () => {
  pl.applyPolicies('to-svc.yaml', policy('to-b', 'x', `{ podSelector: {}, policyTypes: [Egress], egress: [{ to: [{ namespaceSelector: ${nsSel('y')}, podSelector: { matchLabels: { pod: b } } }], ports: [{ port: 80 }] }] }`));
  const t = await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(reaching(t, (p) => p === 'x/a', any), ['x/a>x/a', 'x/a>y/b']);
  assert.deepEqual(await pl.assertService(SERVICE_IP, 8080, 'y/b', 80), PEERS, 'every pod reaches y/b through its Service');
  const other = await pl.probe([{ from: 'x/a', host: pl.ipOf('y/c'), port: 80, protocol: 'tcp', expect: false }, { from: 'x/a', host: pl.ipOf('y/b'), port: 81, protocol: 'tcp', expect: false }]);
  assert.deepEqual(other.map((r) => r.ok), [false, false]);
});

test('hairpin: an isolated pod reaches itself through its own Service, as the evaluator says (a pod always reaches itself)', async () => {
  pl.applyPolicies('hairpin.yaml', [DENY_INGRESS_X, policy('from-y', 'x', `{ podSelector: {}, ingress: [{ from: [{ namespaceSelector: ${nsSel('y')} }] }] }`)].join('---\n'));
  await pl.assertMatrix(80, 'tcp');
  assert.deepEqual(await pl.assertService(X_SERVICE_IP, 8080, 'x/a', 80), ['x/a', 'y/a', 'y/b', 'y/c']);
});

test('a label update: y/a relabelled leaves the allowed set, and comes back', async () => {
  pl.applyPolicies('from-a.yaml', policy('from-a', 'x', '{ podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: a } } }] }] }'));
  assert.equal(reaching(await pl.assertMatrix(80, 'tcp'), (p) => p === 'y/a', inNs('x')).length, 3);
  try {
    await pl.relabel('y/a', { pod: 'moved' });
    assert.equal(reaching(await pl.assertMatrix(80, 'tcp'), (p) => p === 'y/a', inNs('x')).length, 0);
  } finally {
    await pl.relabel('y/a', { pod: 'a' });
  }
  assert.equal(reaching(await pl.assertMatrix(80, 'tcp'), (p) => p === 'y/a', inNs('x')).length, 3);
});

test('isolation before the first packet: a new pod selected by deny-egress cannot connect at its start; the same pod in z can', async () => {
  pl.applyPolicies('deny-egress.yaml', DENY_EGRESS_X);
  await pl.assertMatrix(80, 'tcp');
  const target = `${pl.ipOf('y/a')}:80`;
  const starter = (ns: string, node: string) => `apiVersion: v1\nkind: Pod\nmetadata: { name: d, namespace: ${ns}, labels: { pod: d } }\n`
    + `spec: { nodeName: ${node}, terminationGracePeriodSeconds: 0, containers: [{ name: s, command: [sh, -c, "flatnet probe ${target} --timeout 2s; exec sleep infinity"] }] }\n`;
  // Both on one node: the control in z proves that node's network serves a pod at its start.
  const manifest = [starter('x', 'node-2'), starter('z', 'node-2')].join('---\n');
  await pl.t.applyAndRun('first-packet.yaml', manifest, PEERS.length + 2, 30_000);
  const store = pl.t.lab.store();
  const pod = async (ns: string) => JSON.parse((await store.get(objectKey('Pod', 'd', ns)))!.value) as Pod;
  const [xPod, zPod] = [await pod('x'), await pod('z')];
  await store.close();
  // The container's log holds `flatnet probe`'s one line: its first connection, made as the container started.
  const firstLine = (p: Pod) => {
    const log = join(pl.t.lab.nodeDir(p.spec.nodeName!), 'pods', `${p.metadata.uid}-s.log`);
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').find((l) => /answered|no answer/.test(l)) : undefined;
  };
  try {
    const [xs, zs] = await Promise.all([until('x/d\'s first probe', () => firstLine(xPod) ?? false, 10_000), until('z/d\'s first probe', () => firstLine(zPod) ?? false, 10_000)]);
    assert.match(xs, /no answer/, `x/d (isolated for egress) got through at its start: ${xs}`);
    assert.match(zs, /y\/a answered/, `z/d (not isolated) must connect at its start: ${zs}`);
  } finally {
    assert.equal(pl.t.cli('delete', '-f', join(scope.dir, 'first-packet.yaml'), '--grace-period', '0').status, 0);
  }
});

test('an established connection is cut within 1 s of the policy being synced on its node; deleted, new connections work', async () => {
  const [from, to] = ['y/a', 'x/a'];
  const stream = spawn('nsenter', [`--net=/run/netns/${pl.netnsOf(from)}`, process.execPath, '-e', `
    const s = require('node:net').connect(80, ${JSON.stringify(pl.ipOf(to))});
    s.setEncoding('utf8');
    let n = 0, buf = '';
    s.on('connect', () => setInterval(() => s.write('ping ' + (n++) + '\\n'), 20));
    s.on('data', (d) => { buf += d; const l = buf.split('\\n'); buf = l.pop(); if (l.some((x) => x.startsWith('ping'))) console.log('echo ' + Date.now()); });
    s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });`], { stdio: ['ignore', 'pipe', 'pipe'] });
  scope.adoptProcess(stream);
  let lastEcho = 0;
  stream.stdout!.on('data', (b: Buffer) => { for (const m of b.toString().matchAll(/echo (\d+)/g)) lastEcho = Number(m[1]); });
  try {
    await until('the stream flows', () => lastEcho > 0, 10_000, 20);
    const applyStart = Date.now();
    pl.applyPolicies('cut.yaml', DENY_INGRESS_X);
    const applied = Date.now();
    await until(`${to}'s node has it isolated`, () => pl.policyMapHas(pl.nodeOf(to), 'ingress', pl.ipOf(to)), 10_000, 20);
    const synced = Date.now();
    // Echoes must stop: nothing arrives more than 1 s after the sync is seen (the wait ends on a quiet 1.5 s).
    await until('the stream to stop', () => Date.now() - Math.max(lastEcho, synced) > 1500, 10_000, 50);
    console.log(`# cut: apply took ${applied - applyStart} ms, synced ${synced - applied} ms after, last echo ${lastEcho - synced} ms after the sync`);
    assert.ok(lastEcho >= applyStart, 'the stream flowed until the apply');
    assert.ok(lastEcho - synced <= 1000, `echoes went on ${lastEcho - synced} ms after ${pl.nodeOf(to)} synced the policy`);
  } finally { stream.kill('SIGKILL'); }
  assert.equal(pl.t.cli('delete', '-f', join(scope.dir, 'cut.yaml')).status, 0);
  assert.equal((await pl.assertMatrix(80, 'tcp')).flat().filter(Boolean).length, 81);
});

interface Report { pass: boolean; rules: Array<{ rule: number; status: string; failures: string[]; evidence: string[] }> }

test('flatnet check judges both verdicts, and fails naming the node whose policy table is gone', async () => {
  pl.applyPolicies('check.yaml', [DENY_INGRESS_X, policy('from-y', 'x', `{ podSelector: {}, ingress: [{ from: [{ namespaceSelector: ${nsSel('y')} }], ports: [{ port: serve-80-tcp }] }] }`)].join('---\n'));
  await pl.assertMatrix(80, 'tcp');
  const good = pl.t.cli('check', '-o', 'json');
  const report = JSON.parse(good.stdout) as Report;
  const rule = (r: Report, n: number) => r.rules.find((x) => x.rule === n)!;
  assert.equal(good.status, 0, JSON.stringify(report.rules.filter((r) => r.status === 'fail'), null, 1).slice(0, 3000));
  assert.equal(rule(report, 11).status, 'pass');
  assert.match(rule(report, 11).evidence[0], /^(\d+)\/\1 allowed pairs connected, (\d+)\/\2 denied pairs dropped/);
  assert.ok(/[1-9]\d* allowed/.test(rule(report, 11).evidence[0]) && !/, 0\/0 denied/.test(rule(report, 11).evidence[0]), rule(report, 11).evidence[0]);
  assert.match(rule(report, 1).evidence[0], /left out: NetworkPolicy denies them/);
  // x/a's Service: clients the policies deny it are left out of rule 7, not failed.
  assert.match(rule(report, 7).evidence[0], /client-service pairs? left out: NetworkPolicy denies some of their backends/);

  // x/b lives on node-2: its agent held (SIGSTOP), its table deleted, the check must see x/b reachable.
  const node = pl.nodeOf('x/b');
  const pid = livePid(pl.t.lab.pidFile(`agent-${node}`));
  assert.ok(pid, `agent-${node} runs`);
  process.kill(pid, 'SIGSTOP');
  try {
    const del = spawnSync('nsenter', [`--net=/run/netns/${pl.nodeNetns(node)}`, 'nft', 'delete', 'table', 'inet', 'flatnet-policy'], { encoding: 'utf8' });
    assert.equal(del.status, 0, del.stderr);
    const broken = pl.t.cli('check', '-o', 'json');
    assert.notEqual(broken.status, 0);
    const r11 = rule(JSON.parse(broken.stdout) as Report, 11);
    assert.equal(r11.status, 'fail');
    assert.ok(r11.failures.length > 0 && r11.failures.every((f) => f.includes(`node ${node} does not enforce it`)), r11.failures.join('\n'));
    assert.ok(r11.failures.some((f) => / -> x\/b /.test(f)), r11.failures.join('\n'));
  } finally {
    process.kill(pid, 'SIGCONT');
    // A restarted agent finds no table and writes it whole.
    await pl.t.lab.stopAgent(node, 'SIGKILL');
    await pl.t.lab.startAgent(node);
    await pl.t.lab.waitNodesReady([node], 15_000);
  }
  await until(`${node} has its policy table again`, () => pl.policyMapHas(node, 'ingress', pl.ipOf('x/b')), 15_000);
});
