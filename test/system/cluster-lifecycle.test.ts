// The cluster over time: a removed node's routes go from the others and its CIDR is reused only after
// it is gone; an agent killed with SIGKILL and restarted changes nothing and drops no connection; a node
// whose agent is gone is NotReady but keeps its routes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor, type TestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { startProbes, startStream } from '../helpers/stream.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import type { Node, Pod } from '../../src/api/types.js';

const scope = new TestScope('lc');
after(() => scope.cleanupSync());
let t: TestLab;

const routesOf = (netns: string) => execFileSync('ip', ['-n', netns, 'route', 'show'], { encoding: 'utf8' });

async function nodes(): Promise<Node[]> {
  const store = t.lab.store();
  try { return (await store.list('/registry/nodes/')).items.map((kv) => JSON.parse(kv.value) as Node); } finally { await store.close(); }
}

before(async () => {
  t = labFor(scope, 'l');
  await t.lab.up(cluster('auto'));
});

test('removing a node withdraws its routes on the others; its CIDR is reused only after it is gone', async () => {
  const all = await nodes();
  const gone = all.find((n) => n.metadata.name === 'node-2')!;
  const cidr = gone.spec.podCIDR!;
  const n1 = t.lab.plan().nodes.find((n) => n.name === 'node-1')!.netns;
  await until('node-1 to route node-2\'s pod CIDR', () => routesOf(n1).includes(`${cidr} `));

  // A node added while node-2 still exists gets another CIDR.
  assert.equal(t.cli('lab', 'node', 'add', 'node-4', '--segment', 'a').status, 0);
  const n4 = (await nodes()).find((n) => n.metadata.name === 'node-4')!;
  assert.notEqual(n4.spec.podCIDR, cidr);

  const r = t.cli('lab', 'node', 'rm', 'node-2');
  assert.equal(r.status, 0, r.stderr);
  await until('node-1 to drop the route to node-2', () => !routesOf(n1).includes(`${cidr} `));
  assert.ok(!(await nodes()).some((n) => n.metadata.name === 'node-2'));

  // Now the CIDR is free: the next node takes it (the lowest free slice).
  assert.equal(t.cli('lab', 'node', 'add', 'node-5', '--segment', 'b').status, 0);
  const n5 = (await nodes()).find((n) => n.metadata.name === 'node-5')!;
  assert.equal(n5.spec.podCIDR, cidr);
  await until('node-1 to route node-5', () => routesOf(n1).includes(`${cidr} `));
  const g = t.cli('get', 'nodes', '-o', 'wide');
  assert.match(g.stdout, /node-5\s+Ready/);
  assert.doesNotMatch(g.stdout, /node-2/);
});

test('agent kill -9 and restart during a pod-to-pod TCP stream: the stream survives, no probe fails, nothing changes', async () => {
  const pods = await t.applyAndRun('stream.yaml', `apiVersion: v1
kind: Pod
metadata: { name: srv, namespace: default }
spec: { nodeName: node-3, containers: [{ name: s, command: [flatnet, serve, --port, "7000"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: cli, namespace: default }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
`, 2, 30_000);
  const srv = pods.get('srv')!;
  const cli = pods.get('cli')!;
  const cliNs = podNetnsName(t.lab.name, cli.metadata.uid!);
  const n1 = t.lab.plan().nodes.find((n) => n.name === 'node-1')!.netns;
  const routesBefore = routesOf(n1);
  const nftBefore = execFileSync('nsenter', [`--net=/run/netns/${n1}`, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });

  // One TCP connection, a line every 20 ms, each echoed back; probes across the restart beside it.
  const stream = await startStream(scope, cliNs, srv.status!.podIP!, 7000);
  const probes = await startProbes(scope, cliNs, [`${srv.status!.podIP}:7000`]);

  await t.lab.stopAgent('node-1', 'SIGKILL');
  await t.lab.stopAgent('node-3', 'SIGKILL');
  await sleep(500);
  await t.lab.startAgent('node-1');
  await t.lab.startAgent('node-3');
  await t.lab.waitNodesReady(['node-1', 'node-3'], 15_000);
  // Keep probing for a while after the restart, whatever the machine's speed.
  const afterRestart = probes.probes;
  await until('5 more probes after the restart', () => probes.probes >= afterRestart + 5 || undefined, 30_000);
  const p = await probes.stop();
  const result = await stream.stop();
  assert.equal(result.error, undefined, `the stream broke: ${JSON.stringify(result)}`);
  assert.ok(result.got >= result.sent - 2 && result.sent > 50, `echoes ${result.got} of ${result.sent}`);
  assert.ok(result.maxGap < 1000, `longest gap between echoes ${result.maxGap} ms`);
  assert.deepEqual(p.failures, [], `${p.failures.length} of ${p.probes} probes failed`);
  assert.ok(p.probes >= 5);
  assert.equal(routesOf(n1), routesBefore, 'routes unchanged by the restart');
  assert.equal(execFileSync('nsenter', [`--net=/run/netns/${n1}`, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }), nftBefore, 'nft unchanged');
  // The pods were adopted, not recreated.
  const store2 = t.lab.store();
  try {
    const now = (await store2.list('/registry/pods/default/')).items.map((kv) => JSON.parse(kv.value) as Pod);
    assert.equal(now.find((p) => p.metadata.name === 'cli')!.status!.podIP, cli.status!.podIP);
  } finally { await store2.close(); }
});

test('an agent that stops heartbeating: its node goes NotReady, the others keep its routes; Ready again when it returns', async () => {
  const n3cidr = (await nodes()).find((n) => n.metadata.name === 'node-3')!.spec.podCIDR!;
  const n1 = t.lab.plan().nodes.find((n) => n.name === 'node-1')!.netns;
  await until('node-1 to route node-3', () => routesOf(n1).includes(`${n3cidr} `));
  const before = routesOf(n1);
  // Every route change on node-1 while node-3's agent is gone: a deletion would show here.
  const monitor = spawn('ip', ['-n', n1, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  scope.adoptProcess(monitor);
  let events = '';
  monitor.stdout!.on('data', (b: Buffer) => { events += b.toString(); });
  await t.lab.stopAgent('node-3', 'SIGKILL');
  // The heartbeat lease is 4 s: the key goes when it ends and the controller marks the node NotReady.
  await until('node-3 NotReady', async () => /node-3\s+NotReady/.test(t.cli('get', 'nodes').stdout), 20_000);
  // node-1's agent saw the same heartbeat change; give its routes loop time to act on it, if it would.
  const seen = Date.now();
  await until('2 s after NotReady', () => Date.now() - seen >= 2000, 5000, 200);
  monitor.kill();
  assert.doesNotMatch(events, new RegExp(`Deleted ${n3cidr.replace(/\./g, '\\.')}`), events);
  assert.equal(routesOf(n1), before, 'node-1 keeps node-3\'s route while its Node exists');
  await t.lab.startAgent('node-3');
  await until('node-3 Ready', async () => /node-3\s+Ready/.test(t.cli('get', 'nodes').stdout), 20_000);
  assert.equal(routesOf(n1), before);
});

test('kubectl-style commands: lab status, get -o json|yaml, exec -c, a bad manifest changes nothing, delete', async () => {
  const status = t.cli('lab', 'status').stdout;
  for (const p of ['etcd', 'controller', 'agent-node-1', 'supervisor']) assert.match(status, new RegExp(`^${p}\\s+\\d+\\s+running\\s+(\\d+|-)\\s`, 'm'), status);
  assert.match(status, /^node-1\s+\S+\s+10\.244\.\d+\.0\/24\s+alive$/m);
  const nodesJson = JSON.parse(t.cli('get', 'nodes', '-o', 'json').stdout) as { kind: string; items: Node[] };
  assert.equal(nodesJson.kind, 'List');
  const n1 = nodesJson.items.find((n) => n.metadata.name === 'node-1')!;
  assert.equal(n1.status!.addresses!.find((a) => a.type === 'InternalIP')!.address, t.lab.plan().nodes.find((n) => n.name === 'node-1')!.ip);
  assert.match(n1.spec.podCIDR!, /^10\.244\.\d+\.0\/24$/);

  const file = join(scope.dir, 'kubectl.yaml');
  writeFileSync(file, `apiVersion: v1
kind: Namespace
metadata: { name: team }
---
apiVersion: v1
kind: Pod
metadata: { name: pair, namespace: team }
spec:
  containers:
    - { name: a, command: [flatnet, serve, --port, "8080"] }
    - { name: b, command: [sleep, infinity] }
`);
  assert.equal(t.cli('apply', '-f', file).status, 0);
  const store = t.lab.store();
  try { await waitPodsRunning(store, 1, 30_000); } finally { await store.close(); }
  const pod = (JSON.parse(t.cli('get', 'pods', 'pair', '-n', 'team', '-o', 'json').stdout)) as Pod;
  assert.equal(pod.kind, 'Pod');
  assert.match(pod.status!.podIP!, /^10\.244\./);
  assert.ok(pod.spec.nodeName);
  assert.match(t.cli('get', 'pods', '-n', 'team', '-o', 'yaml').stdout, /^apiVersion: v1\nitems:\n- apiVersion: v1\n {2}kind: Pod/m);
  // Containers of one pod share its network namespace: b reaches a on localhost.
  const ex = t.cli('exec', 'team/pair', '-c', 'b', '--', 'flatnet', 'probe', '127.0.0.1:8080');
  assert.equal(ex.status, 0, ex.stdout + ex.stderr);
  assert.match(ex.stdout, /team\/pair answered/);
  assert.notEqual(t.cli('exec', 'team/pair', '-c', 'nope', '--', 'true').status, 0);

  // One bad object refuses the whole apply: the good one before it is not stored either.
  const bad = join(scope.dir, 'bad.yaml');
  writeFileSync(bad, `apiVersion: v1
kind: Pod
metadata: { name: fine, namespace: team }
spec: { containers: [{ name: a, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: broken, namespace: team }
spec: { containers: [{ name: a, ports: [{ containerPort: 70000 }] }] }
`);
  const r = t.cli('apply', '-f', bad);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /bad\.yaml: document 2 \(Pod "broken"\): spec\.containers\[0\]\.ports\[0\]\.containerPort: 70000/);
  assert.match(t.cli('get', 'pods', 'fine', '-n', 'team').stderr, /NotFound/);

  assert.equal(t.cli('delete', '-f', file).status, 0);
  const again = t.cli('delete', '-f', file);
  assert.equal(again.status, 1, 'deleting what is gone fails, as kubectl does');
  assert.match(again.stderr, /Error from server \(NotFound\): namespaces "team" not found/);
  await until('the pod to go with its namespace', async () => /No resources found/.test(t.cli('get', 'pods', '-n', 'team').stderr));
  await until('the node to remove the pod\'s network namespace', () => !existsSync(`/run/netns/${podNetnsName(t.lab.name, pod.metadata.uid!)}`));
});
