// The service network on a 3-node lab (two segments, auto backend), with real packets: ClusterIP from
// pods and nodes, NodePort from the external host, traffic policies, session affinity, hairpin, a
// Service without endpoints, endpoints that go, and an agent restart that changes nothing.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestScope } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { CLI, cluster, labFor, type TestLab } from '../helpers/lab.js';
import { waitPodsRunning, waitServiceProgrammed } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import { ENDPOINTSLICE_PREFIX, POD_PREFIX, objectKey } from '../../src/api/keys.js';
import type { EndpointSlice, Pod, Service } from '../../src/api/types.js';

const scope = new TestScope('svc');
after(() => scope.cleanupSync());
let t: TestLab;
const pods = new Map<string, Pod>();

interface Result { ok: boolean; server?: string; client?: string; error?: string; ms: number }

/** Probes from a namespace, all at once, through `flatnet probe-worker` (what `flatnet check` uses). */
/** Probes at once from `netns`; a failed one is tried once more after 250 ms, as `flatnet check` does, so a starved moment is no failure. */
function probes(netns: string, host: string, port: number, count: number, protocol: 'tcp' | 'udp' = 'tcp', timeoutMs = 1500): Result[] {
  const targets = Array.from({ length: count }, (_, id) => ({ id, host, port, protocol }));
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, process.execPath, CLI, 'probe-worker'], { input: JSON.stringify({ timeoutMs, attempts: 2, backoffMs: [250], targets }), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Result[];
}
const podNs = (name: string) => podNetnsName(t.lab.name, pods.get(name)!.metadata.uid!);
const nodeNs = (name: string) => t.lab.plan().nodes.find((n) => n.name === name)!.netns;
const nodeIP = (name: string) => t.lab.plan().nodes.find((n) => n.name === name)!.ip;
const extNs = () => t.lab.plan().external.netns;
const servers = (rs: Result[]) => [...new Set(rs.map((r) => r.server))].sort();
const ipOf = (name: string) => pods.get(name)!.status!.podIP!;

async function service(name: string): Promise<Service> {
  const store = t.lab.store();
  try { return JSON.parse((await store.get(objectKey('Service', name, 'default')))!.value) as Service; } finally { await store.close(); }
}

const MANIFEST = `apiVersion: v1
kind: Pod
metadata: { name: web-1, namespace: default, labels: { app: web, tier: front } }
spec: { nodeName: node-1, containers: [{ name: s, command: [flatnet, serve, --port, "8080", --port, "5353/udp"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-2, namespace: default, labels: { app: web } }
spec: { nodeName: node-2, containers: [{ name: s, command: [flatnet, serve, --port, "8080", --port, "5353/udp"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-3, namespace: default, labels: { app: web, tier: front } }
spec: { nodeName: node-3, containers: [{ name: s, command: [flatnet, serve, --port, "8080", --port, "5353/udp"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: c1, namespace: default }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: c3, namespace: default }
spec: { nodeName: node-3, containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.96.0.50
  selector: { app: web }  # web-1 (node-1) and web-3 (node-3) are also tier=front: node-2 has no endpoint of web-local
  ports: [{ name: http, port: 80, targetPort: http }, { name: dns, port: 53, targetPort: 5353, protocol: UDP }]
---
apiVersion: v1
kind: Service
metadata: { name: web-np, namespace: default }
spec:
  type: NodePort
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web-local, namespace: default }
spec:
  type: NodePort
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  clusterIP: 10.96.0.51
  selector: { app: web, tier: front }
  ports: [{ port: 80, targetPort: 8080, nodePort: 30081 }]
---
apiVersion: v1
kind: Service
metadata: { name: sticky, namespace: default }
spec:
  clusterIP: 10.96.0.52
  selector: { app: web }
  sessionAffinity: ClientIP
  sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: sticky-np, namespace: default }
spec:
  type: NodePort
  selector: { app: web }
  sessionAffinity: ClientIP
  ports: [{ port: 80, targetPort: 8080, nodePort: 30082 }]
---
apiVersion: v1
kind: Service
metadata: { name: nobody, namespace: default }
spec:
  clusterIP: 10.96.0.53
  selector: { app: nobody }
  ports: [{ port: 80 }, { name: udp, port: 53, protocol: UDP }]
`.replace('{ port: 80 }, { name: udp', '{ name: tcp, port: 80 }, { name: udp');

before(async () => {
  t = labFor(scope, 's');
  await t.lab.up(cluster('auto'));
  for (const [name, p] of await t.applyAndRun('services.yaml', MANIFEST, 5, 30_000)) pods.set(name, p);
  await waitServiceProgrammed(t.lab, '10.96.0.50', 80, 3, 10_000);
});

test('ClusterIP: from pods on every node and from every node, probes reach every endpoint; a pod client is seen by its own IP', async () => {
  for (const from of ['c1', 'c3']) {
    const rs = probes(podNs(from), '10.96.0.50', 80, 36); // all three reached: fails by chance once in ~10^5
    assert.ok(rs.every((r) => r.ok), JSON.stringify(rs.filter((r) => !r.ok)));
    assert.deepEqual(servers(rs), ['default/web-1', 'default/web-2', 'default/web-3'], `from ${from}`);
    assert.deepEqual([...new Set(rs.map((r) => r.client))], [ipOf(from)], 'no NAT for pod clients');
  }
  for (const node of ['node-1', 'node-2', 'node-3']) {
    const rs = probes(nodeNs(node), '10.96.0.50', 80, 36);
    assert.ok(rs.every((r) => r.ok), `${node}: ${JSON.stringify(rs.filter((r) => !r.ok))}`);
    assert.equal(servers(rs).length, 3, `${node} reached ${servers(rs)}`);
  }
  const udp = probes(podNs('c1'), '10.96.0.50', 53, 12, 'udp');
  assert.ok(udp.every((r) => r.ok), JSON.stringify(udp));
  assert.ok(servers(udp).length >= 2, `UDP spread over ${servers(udp)}`);
});

test('flatnet check proves rules 7-10 on this lab, and fails rule 7 naming the clients of a node whose proxy table is gone', async () => {
  const r = t.cli('check', '-o', 'json');
  const report = JSON.parse(r.stdout) as { pass: boolean; rules: Array<{ rule: number; status: string; failures: string[]; evidence: string[] }> };
  assert.equal(r.status, 0, r.stdout.slice(0, 2000));
  assert.deepEqual(report.rules.filter((x) => x.rule >= 7).map((x) => `${x.rule} ${x.status}`), ['7 pass', '8 pass', '9 pass', '10 pass']);
  assert.ok(report.rules.find((x) => x.rule === 7)!.evidence.some((e) => /default\/sticky .* \(session affinity\)/.test(e)));

  execFileSync('nsenter', [`--net=/run/netns/${nodeNs('node-3')}`, 'nft', 'delete', 'table', 'ip', 'flatnet-proxy']);
  try {
    const broken = t.cli('check', '-o', 'json');
    assert.notEqual(broken.status, 0);
    const rule7 = (JSON.parse(broken.stdout) as typeof report).rules.find((x) => x.rule === 7)!;
    assert.equal(rule7.status, 'fail');
    assert.ok(rule7.failures.length > 0 && rule7.failures.every((f) => / from (default\/c3|node node-3): /.test(f)), rule7.failures.join('\n'));
  } finally {
    // A restarted agent finds no table and writes it whole.
    await t.lab.stopAgent('node-3', 'SIGKILL');
    await t.lab.startAgent('node-3');
    await t.lab.waitNodesReady(['node-3'], 15_000);
    await waitServiceProgrammed(t.lab, '10.96.0.50', 80, 3, 10_000);
  }
});

test('NodePort: the external host reaches every node; Cluster policy masquerades, Local keeps its IP and serves from that node', async () => {
  for (const node of ['node-1', 'node-2', 'node-3']) {
    const rs = probes(extNs(), nodeIP(node), 30080, 36);
    assert.ok(rs.every((r) => r.ok), `${node}: ${JSON.stringify(rs.filter((r) => !r.ok))}`);
    assert.equal(servers(rs).length, 3, `Cluster policy spreads over all endpoints from ${node}`);
  }
  for (const [node, pod] of [['node-1', 'default/web-1'], ['node-3', 'default/web-3']]) {
    const rs = probes(extNs(), nodeIP(node), 30081, 6);
    assert.ok(rs.every((r) => r.ok), JSON.stringify(rs));
    assert.deepEqual(servers(rs), [pod], `Local policy answers from ${node}'s own endpoint`);
    assert.deepEqual([...new Set(rs.map((r) => r.client))], [t.lab.plan().external.ip], 'the client IP reaches the pod');
  }
  // From another node too: node-1 reaches node-3's NodePort.
  const fromNode = probes(nodeNs('node-1'), nodeIP('node-3'), 30080, 12);
  assert.ok(fromNode.every((r) => r.ok), JSON.stringify(fromNode.filter((r) => !r.ok)));
  // node-2 has no endpoint of web-local: it drops (a timeout, not a refusal).
  const dropped = probes(extNs(), nodeIP('node-2'), 30081, 1, 'tcp', 800);
  assert.equal(dropped[0].ok, false);
  assert.match(dropped[0].error!, /timeout/);
});

test('internalTrafficPolicy Local: a client reaches only its own node\'s endpoint', async () => {
  assert.deepEqual(servers(probes(podNs('c1'), '10.96.0.51', 80, 10)), ['default/web-1']);
  assert.deepEqual(servers(probes(podNs('c3'), '10.96.0.51', 80, 10)), ['default/web-3']);
});

test('hairpin: a pod reaching its own Service may land on itself, and that works', async () => {
  const rs = probes(podNs('web-1'), '10.96.0.50', 80, 36);
  assert.ok(rs.every((r) => r.ok), JSON.stringify(rs.filter((r) => !r.ok)));
  assert.ok(servers(rs).includes('default/web-1'), `landed on itself among ${servers(rs)}`);
});

test('session affinity ClientIP keeps a client on one endpoint; another client may get another', async () => {
  const first = probes(podNs('c1'), '10.96.0.52', 80, 1)[0];
  assert.ok(first.ok);
  await sleep(100);
  const rs = probes(podNs('c1'), '10.96.0.52', 80, 20);
  assert.deepEqual(servers(rs), [first.server], 'every later connection of c1 goes where its first went');
  // The same through a NodePort, for the external host, on each node's address.
  for (const node of ['node-1', 'node-3']) {
    const one = probes(extNs(), nodeIP(node), 30082, 1)[0];
    assert.ok(one.ok, JSON.stringify(one));
    await sleep(100);
    assert.deepEqual(servers(probes(extNs(), nodeIP(node), 30082, 20)), [one.server], `NodePort affinity on ${node}`);
  }
});

test('a Service without endpoints refuses at once: TCP reset and ICMP unreachable', async () => {
  const [tcp] = probes(podNs('c1'), '10.96.0.53', 80, 1, 'tcp', 3000);
  assert.equal(tcp.error, 'ECONNREFUSED');
  assert.ok(tcp.ms < 1000, `refused after ${tcp.ms} ms`);
  const [udp] = probes(podNs('c3'), '10.96.0.53', 53, 1, 'udp', 3000);
  assert.equal(udp.error, 'ECONNREFUSED');
  assert.ok(udp.ms < 1000, `refused after ${udp.ms} ms`);
  const [fromNode] = probes(nodeNs('node-2'), '10.96.0.53', 80, 1, 'tcp', 3000);
  assert.equal(fromNode.error, 'ECONNREFUSED');
});

test('an agent killed and restarted writes nothing to the proxy table', async () => {
  const before = execFileSync('nsenter', [`--net=/run/netns/${nodeNs('node-2')}`, 'nft', 'list', 'table', 'ip', 'flatnet-proxy'], { encoding: 'utf8' });
  await t.lab.stopAgent('node-2', 'SIGKILL');
  const logBefore = readFileSync(t.lab.logFile('agent-node-2'), 'utf8').length;
  await t.lab.startAgent('node-2');
  await t.lab.waitNodesReady(['node-2'], 15_000);
  // The old agent's heartbeat outlives it by a TTL: wait for the new agent's first proxy sync to say what it did.
  const firstSync = / proxy: /;
  await until('the restarted agent\'s first proxy sync', () => firstSync.test(readFileSync(t.lab.logFile('agent-node-2'), 'utf8').slice(logBefore)), 30_000);
  // The agent logs every proxy write it makes; the restarted one must have made none.
  const logged = readFileSync(t.lab.logFile('agent-node-2'), 'utf8').slice(logBefore);
  assert.deepEqual(logged.split('\n').filter((l) => / proxy: /.test(l)).map((l) => l.replace(/^\S+ /, '')), ['agent[node-2] proxy: table flatnet-proxy adopted as it is, nothing written']);
  const afterRestart = execFileSync('nsenter', [`--net=/run/netns/${nodeNs('node-2')}`, 'nft', 'list', 'table', 'ip', 'flatnet-proxy'], { encoding: 'utf8' });
  // Affinity entries count down; the rest must be the same text.
  const lines = (text: string) => text.replace(/ expires \S+/g, '').split('\n');
  const [a, b] = [lines(before), lines(afterRestart)];
  assert.deepEqual(b.filter((l) => !a.includes(l)), [], `lines new after the restart (gone: ${JSON.stringify(a.filter((l) => !b.includes(l)))})`);
  assert.equal(b.length, a.length);
});

test('a deleted pod leaves the endpoints and traffic moves; its UDP flows are flushed', async () => {
  // One UDP socket, one source port: without the flush its conntrack entry would keep the dead endpoint.
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const ask = () => new Promise((res) => { const t = setTimeout(() => res('timeout'), 700); s.once('message', (m) => { clearTimeout(t); res(JSON.parse(m).pod); }); s.send('q\\n', 53, '10.96.0.50'); });
    s.bind(40053, async () => {
      const first = await ask();
      console.log(first);
      process.stdin.once('data', async () => { const seen = []; for (let i = 0; i < 3; i++) seen.push(await ask()); console.log(seen.join(',')); process.exit(0); });
    });`;
  const child = spawn('nsenter', [`--net=/run/netns/${podNs('c1')}`, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  scope.adoptProcess(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  const deadline = Date.now() + 5000;
  while (!out.includes('\n') && Date.now() < deadline) await sleep(50);
  const victim = out.trim().replace('default/', '');
  assert.match(victim, /^web-[123]$/, `first answer: ${out}`);

  const victimFile = join(scope.dir, 'victim.yaml');
  writeFileSync(victimFile, `apiVersion: v1\nkind: Pod\nmetadata: { name: ${victim}, namespace: default }\nspec: { containers: [{ name: s }] }\n`);
  const r = t.cli('delete', '-f', victimFile);
  assert.equal(r.status, 0, r.stderr);
  await waitServiceProgrammed(t.lab, '10.96.0.50', 80, 2, 10_000);
  // The map changes first, then the agent flushes: wait until c1's node holds no flow toward the victim.
  const victimIP = ipOf(victim);
  const flows = () => spawnSync('nsenter', [`--net=/run/netns/${nodeNs('node-1')}`, 'conntrack', '-L', '-p', 'udp', '--orig-dst', '10.96.0.50'], { encoding: 'utf8' }).stdout;
  for (const deadline = Date.now() + 5000; flows().includes(`src=${victimIP} `);) {
    assert.ok(Date.now() < deadline, `node-1 still has a UDP flow to ${victim} (${victimIP}):\n${flows()}`);
    await sleep(50);
  }
  const store = t.lab.store();
  try {
    const slices = (await store.list(ENDPOINTSLICE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as EndpointSlice);
    const web = slices.filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'web').flatMap((s) => s.endpoints.map((e) => e.targetRef?.name));
    assert.ok(!web.includes(victim) && web.length === 2, `slice endpoints: ${web}`);
  } finally { await store.close(); }
  child.stdin!.write('go\n');
  await exited;
  const after = out.trim().split('\n').pop()!.split(',');
  assert.ok(after.every((p) => p !== 'timeout' && p !== `default/${victim}`), `after the delete, the same socket got: ${after}`);
  const rs = probes(podNs('c3'), '10.96.0.50', 80, 16);
  assert.ok(rs.every((x) => x.ok) && !servers(rs).includes(`default/${victim}`), JSON.stringify(servers(rs)));
  pods.delete(victim);
});

test('graceful delete: a terminating pod gets no new connections while others are ready, serves when none is, then is refused', async () => {
  const file = join(scope.dir, 'drain.yaml');
  const drainPod = (name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default, labels: { app: drain } }
spec: { nodeName: ${node}, terminationGracePeriodSeconds: 20, containers: [{ name: s, command: [flatnet, serve, --port, "8080", --delay-shutdown, "10"] }] }
`;
  writeFileSync(file, [drainPod('drain-1', 'node-1'), drainPod('drain-2', 'node-2'),
    'apiVersion: v1\nkind: Service\nmetadata: { name: drain, namespace: default }\nspec: { clusterIP: 10.96.0.60, selector: { app: drain }, ports: [{ port: 80, targetPort: 8080 }] }\n'].join('---\n'));
  assert.equal(t.cli('apply', '-f', file).status, 0);
  const store = t.lab.store();
  try {
    await waitPodsRunning(store, 2, 20_000);
    await waitServiceProgrammed(t.lab, '10.96.0.60', 80, 2, 10_000);
    const one = (name: string) => { const f = join(scope.dir, `${name}.yaml`); writeFileSync(f, drainPod(name, 'node-1')); return f; };
    const conditions = async () => {
      const slices = (await store.list(ENDPOINTSLICE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as EndpointSlice);
      return Object.fromEntries(slices.filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'drain')
        .flatMap((s) => s.endpoints.map((e) => [e.targetRef!.name, e.conditions])));
    };

    // drain-1 goes: listed as terminating (serving, not ready); new connections all go to drain-2.
    const t0 = Date.now();
    const d1 = t.cli('delete', '-f', one('drain-1'), '--wait=false');
    assert.equal(d1.status, 0, d1.stderr);
    assert.match(d1.stdout, /pod "drain-1" deleted/);
    await waitServiceProgrammed(t.lab, '10.96.0.60', 80, 1, 5000);
    assert.deepEqual((await conditions())['drain-1'], { ready: false, serving: true, terminating: true });
    assert.match(t.cli('get', 'pods').stdout, /^drain-1 +1\/1 +Terminating /m);
    const during = probes(podNs('c3'), '10.96.0.60', 80, 16);
    assert.ok(during.every((r) => r.ok), JSON.stringify(during.filter((r) => !r.ok)));
    assert.deepEqual(servers(during), ['default/drain-2'], 'no new connection to the terminating pod');

    // drain-2 goes too: no endpoint is ready, so the draining ones keep answering (kube-proxy's fallback).
    assert.equal(t.cli('delete', '-f', one('drain-2'), '--wait=false').status, 0);
    await waitServiceProgrammed(t.lab, '10.96.0.60', 80, 2, 5000);
    const fallback = probes(podNs('c3'), '10.96.0.60', 80, 16);
    assert.ok(Date.now() - t0 < 10_000, 'still inside drain-1\'s shutdown delay');
    assert.ok(fallback.every((r) => r.ok), `all draining, still served: ${JSON.stringify(fallback.filter((r) => !r.ok))}`);
    assert.deepEqual(servers(fallback), ['default/drain-1', 'default/drain-2']);

    // Their processes exit after the delay; the kubelets remove the pods; the Service then refuses.
    const deadline = Date.now() + 20_000;
    const draining = async () => (await store.list(`${POD_PREFIX}default/`)).items.filter((kv) => kv.key.includes('/drain-'));
    while ((await draining()).length > 0) {
      assert.ok(Date.now() < deadline, 'the drained pods are removed');
      await sleep(100);
    }
    assert.ok(Date.now() - t0 >= 10_000, 'not before their shutdown delay ended');
    await sleep(500);
    const gone = probes(podNs('c3'), '10.96.0.60', 80, 4);
    assert.ok(gone.every((r) => !r.ok && /refused/i.test(r.error ?? '')), JSON.stringify(gone));
  } finally { await store.close(); }
});

test('apply: a headless Service gets no ClusterIP; a taken ClusterIP or NodePort refuses the whole file and stores nothing', async () => {
  const file = join(scope.dir, 'more.yaml');
  writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: { name: headless, namespace: default }\nspec: { clusterIP: None, selector: { app: web } }\n');
  assert.equal(t.cli('apply', '-f', file).status, 0);
  assert.equal((await service('headless')).spec.clusterIP, 'None');
  assert.match(t.cli('get', 'services').stdout, /^headless\s+ClusterIP\s+None\s+/m);
  for (const [spec, message] of [
    ['{ clusterIP: 10.96.0.50, ports: [{ port: 80 }] }', /spec\.clusterIP: 10\.96\.0\.50 is already allocated \(to Service default\/web\)/],
    ['{ type: NodePort, ports: [{ port: 80, nodePort: 30080 }] }', /spec\.ports\[0\]\.nodePort: 30080 is already allocated \(to Service default\/web-np\)/],
  ] as const) {
    writeFileSync(file, `apiVersion: v1\nkind: Service\nmetadata: { name: innocent, namespace: default }\nspec: { ports: [{ port: 80 }] }\n---\napiVersion: v1\nkind: Service\nmetadata: { name: greedy, namespace: default }\nspec: ${spec}\n`);
    const r = t.cli('apply', '-f', file);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, message);
    assert.doesNotMatch(t.cli('get', 'services').stdout, /innocent|greedy/, 'nothing of the file is stored');
  }
});

test('get services and endpointslices print kubectl tables', async () => {
  const svc = t.cli('get', 'services');
  assert.match(svc.stdout, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/m);
  assert.match(svc.stdout, /^web-np\s+NodePort\s+10\.96\.\d+\.\d+\s+<none>\s+80:30080\/TCP\s+/m);
  assert.match(svc.stdout, /^web\s+ClusterIP\s+10\.96\.0\.50\s+<none>\s+80\/TCP,53\/UDP\s+/m);
  const eps = t.cli('get', 'endpointslices');
  assert.match(eps.stdout, /^nobody-\w{5}\s+IPv4\s+80,53\s+<unset>\s+/m);
  assert.equal((await service('web')).spec.clusterIPs?.[0], '10.96.0.50');
});
