// The data plane does not depend on the control plane's liveness (issue 10): a frozen or dead agent
// leaves its node's routes in place on the others while its Node exists; the lab's supervisor brings
// back etcd, the controller and agents that crash; a busy rollout withdraws no route.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { labFor, type TestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { startProbes, startStream } from '../helpers/stream.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import { defaultCluster } from '../../src/lab/cluster-file.js';
import { livePid } from '../../src/lab/processes.js';
import type { Node, Pod } from '../../src/api/types.js';

const scope = new TestScope('lv');
after(() => scope.cleanupSync());
let t: TestLab;

const nodeNetns = (name: string) => t.lab.plan().nodes.find((n) => n.name === name)!.netns;
const statusLine = (unit: string) => t.cli('lab', 'status').stdout.split('\n').find((l) => l.startsWith(`${unit} `)) ?? '';
const nodeStatus = (name: string) => new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(t.cli('get', 'nodes').stdout)?.[1];

async function storeList<T>(prefix: string): Promise<T[]> {
  const store = t.lab.store();
  try { return (await store.list(prefix)).items.map((kv) => JSON.parse(kv.value) as T); } finally { await store.close(); }
}

/** Every route deletion in a node's namespace from now on, as `ip monitor` prints it. */
function watchRouteDeletions(node: string): () => string[] {
  const monitor = spawn('ip', ['-n', nodeNetns(node), 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  scope.adoptProcess(monitor);
  let out = '';
  monitor.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  return () => { monitor.kill(); return out.split('\n').filter((l) => l.startsWith('Deleted')); };
}

before(async () => {
  t = labFor(scope, 'v');
  const c = defaultCluster();
  c.backend = 'auto';
  // 10 nodes on the two segments: host-gw within one, VXLAN across the router.
  for (let i = 4; i <= 10; i++) c.nodes.push({ name: `node-${i}`, segment: c.segments[i % 2].name });
  await t.lab.up(c, { timeoutMs: 60_000 });
});

test('one agent frozen (SIGSTOP) and one killed (kill -9, restart held) for 30 s: cross-node streams flow, probes answer', async () => {
  const server = (name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default }
spec: { nodeName: ${node}, containers: [{ name: s, command: [flatnet, serve, --port, "7000"] }] }
---
`;
  const pods = await t.applyAndRun('stream.yaml', `${server('srv-frozen', 'node-3')}${server('srv-killed', 'node-2')}apiVersion: v1
kind: Pod
metadata: { name: cli, namespace: default }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
`, 3, 30_000);
  const ip = (name: string) => pods.get(name)!.status!.podIP!;
  const cliNs = podNetnsName(t.lab.name, pods.get('cli')!.metadata.uid!);
  // node-3 is across the router (VXLAN from node-1), node-2 on node-1's segment (host-gw).
  const streams = [await startStream(scope, cliNs, ip('srv-frozen'), 7000), await startStream(scope, cliNs, ip('srv-killed'), 7000)];
  const probes = await startProbes(scope, cliNs, [`${ip('srv-frozen')}:7000`, `${ip('srv-killed')}:7000`]);
  const deletions = watchRouteDeletions('node-1');

  const frozen = livePid(t.lab.pidFile('agent-node-3'))!;
  const killed = livePid(t.lab.pidFile('agent-node-2'))!;
  assert.equal(t.cli('lab', 'hold', 'agent-node-2', '30s').status, 0);
  process.kill(frozen, 'SIGSTOP');
  process.kill(killed, 'SIGKILL');
  const start = Date.now();
  try {
    // Both heartbeats lapse (4 s lease): the nodes are NotReady, which once withdrew their routes.
    await until('node-2 and node-3 NotReady', () => nodeStatus('node-2') === 'NotReady' && nodeStatus('node-3') === 'NotReady', 20_000, 500);
    assert.match(statusLine('agent-node-2'), /^agent-node-2\s+-\s+held\s+0\s+signal SIGKILL/, 'the killed agent waits for its hold');
    await until('30 s since the freeze and the kill', () => Date.now() - start >= 30_000, 40_000, 500);
    // Within the 40 s node-monitor grace period the pods' endpoints stay ready.
    const srv = (await storeList<Pod>('/registry/pods/default/')).filter((p) => p.metadata.name.startsWith('srv-'));
    assert.deepEqual(srv.map((p) => p.status?.conditions?.[0]?.status), ['True', 'True']);
  } finally { process.kill(frozen, 'SIGCONT'); }
  const p = await probes.stop();
  const results = await Promise.all(streams.map((s) => s.stop()));
  for (const [i, r] of results.entries()) {
    assert.equal(r.error, undefined, `stream ${i} broke: ${JSON.stringify(r)}`);
    assert.ok(r.got >= r.sent - 2 && r.sent > 500, `stream ${i}: echoes ${r.got} of ${r.sent}`);
    assert.ok(r.maxGap < 1000, `stream ${i}: longest gap between echoes ${r.maxGap} ms`);
  }
  assert.deepEqual(p.failures, [], `${p.failures.length} of ${p.probes} probes failed`);
  assert.ok(p.probes >= 10, `${p.probes} probes`);
  assert.deepEqual(deletions().filter((l) => l.includes('proto 77')), [], 'node-1 withdrew no peer route');

  // The hold over, the supervisor brings the killed agent back by itself; the frozen one resumes.
  await until('node-2 and node-3 Ready again', () => nodeStatus('node-2') === 'Ready' && nodeStatus('node-3') === 'Ready', 30_000, 500);
  assert.match(statusLine('agent-node-2'), /^agent-node-2\s+\d+\s+running\s+1\s+signal SIGKILL/);
  assert.match(statusLine('agent-node-3'), /^agent-node-3\s+\d+\s+running\s+0\s/);
});

test('kill -9 etcd, the controller and an agent: each comes back by itself and flatnet check passes', async () => {
  const units = ['etcd', 'controller', 'agent-node-5'];
  const pids = units.map((u) => livePid(t.lab.pidFile(u))!);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  for (const [i, u] of units.entries()) {
    await until(`${u} to be restarted`, () => { const pid = livePid(t.lab.pidFile(u)); return pid !== undefined && pid !== pids[i]; }, 30_000, 200);
    await until(`${u}'s restart in lab status`, () => new RegExp(`^${u}\\s+\\d+\\s+running\\s+[1-9]\\d*\\s+signal SIGKILL`).test(statusLine(u)), 10_000, 200);
  }
  await t.lab.waitNodesReady(['node-1', 'node-5'], 30_000);
  await until('every node Ready', async () => (await storeList<Node>('/registry/nodes/')).every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')), 30_000, 500);
  const check = t.cli('check');
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /PASS: \d+ rules passed, 0 failed/);
});

test('a 200-pod rollout on 10 nodes with both cores busy withdraws no route', async () => {
  // Two spin loops keep both cores busy, as a rollout on a loaded machine would.
  const spinners = [0, 1].map(() => { const c = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }); scope.adoptProcess(c); return c; });
  const watches = ['node-1', 'node-3'].map((n) => ({ node: n, stop: watchRouteDeletions(n) }));
  const file = join(scope.dir, 'rollout.yaml');
  writeFileSync(file, `apiVersion: apps/v1
kind: Deployment
metadata: { name: rollout, namespace: default }
spec:
  replicas: 200
  selector: { matchLabels: { app: rollout } }
  template:
    metadata: { labels: { app: rollout } }
    spec: { containers: [{ name: c, command: [sleep, infinity] }] }
`);
  try {
    const before = (await storeList<Pod>('/registry/pods/')).length;
    assert.equal(t.cli('apply', '-f', file).status, 0);
    const store = t.lab.store();
    try { await waitPodsRunning(store, before + 200, 240_000); } finally { await store.close(); }
  } finally { for (const c of spinners) c.kill('SIGKILL'); }
  const pods = await storeList<Pod>('/registry/pods/default/');
  assert.equal(new Set(pods.filter((p) => p.metadata.name.startsWith('rollout-')).map((p) => p.spec.nodeName)).size, 10, 'spread over every node');
  for (const w of watches) assert.deepEqual(w.stop().filter((l) => l.includes('proto 77')), [], `${w.node} withdrew a peer route`);
});
