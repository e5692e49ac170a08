// `flatnet check` tells the truth on a loaded machine: on a 3-node lab running the demo's workload and
// Services among 60 pods, it passes three times in a row while two spin loops keep both cores busy,
// and under the same load still fails, naming the pod, where a rule is really broken. And the lab
// kubelet's Ready follows the pod's ports: a pod whose server dies is not Ready and leaves its Service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor, type TestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { DEMO_MANIFESTS, waitPodsRunning, waitServiceProgrammed } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import { listObjects } from '../../src/api/apply.js';
import type { EndpointSlice, Pod, Service } from '../../src/api/types.js';

const scope = new TestScope('chl');
after(() => scope.cleanupSync());
let t: TestLab;

// 10 demo pods, one whose server runs beside its main process, and 49 more: 60 pods.
const MORE = `apiVersion: apps/v1
kind: Deployment
metadata: { name: fill, namespace: demo }
spec:
  replicas: 49
  selector: { matchLabels: { app: fill } }
  template:
    metadata: { labels: { app: fill } }
    spec:
      containers: [{ name: c, command: [sleep, infinity] }]
---
apiVersion: v1
kind: Pod
metadata: { name: half, namespace: demo, labels: { app: half } }
spec:
  containers:
    - name: main
      command: [sh, -c, "flatnet serve --port 8080 & exec sleep infinity"]
      ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: half, namespace: demo }
spec: { selector: { app: half }, ports: [{ port: 80, targetPort: 8080 }] }
`;

interface Report { pass: boolean; retried: number; unready: unknown[]; rules: Array<{ rule: number; status: string; failures: string[] }> }

function check(): { status: number; report: Report } {
  const r = t.cli('check', '-o', 'json');
  try { return { status: r.status, report: JSON.parse(r.stdout) as Report }; } catch { assert.fail(`check printed no report (${r.status}): ${r.stderr}`); }
}

/** Two busy loops, one per core, until `fn` is done; they die with the scope if the test does. */
async function underLoad<T>(fn: () => Promise<T> | T): Promise<T> {
  const spins = [0, 1].map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  for (const s of spins) scope.adoptProcess(s);
  try { return await fn(); } finally { for (const s of spins) s.kill('SIGKILL'); }
}

async function pods(): Promise<Pod[]> {
  const store = t.lab.store();
  try { return (await listObjects(store, 'Pod', 'demo')) as Pod[]; } finally { await store.close(); }
}
const netnsOf = (p: Pod) => podNetnsName(t.lab.name, p.metadata.uid!);

before(async () => {
  t = labFor(scope, 'l');
  await t.lab.up(cluster('auto'));
  const file = join(scope.dir, 'load.yaml');
  writeFileSync(file, `${DEMO_MANIFESTS}---\n${MORE}`);
  const r = t.cli('apply', '-f', file);
  assert.equal(r.status, 0, r.stderr);
  const store = t.lab.store();
  try {
    assert.equal((await waitPodsRunning(store, 60, 120_000)).length, 60);
    const web = (await listObjects(store, 'Service', 'demo')).find((o) => o.metadata.name === 'web') as Service;
    await waitServiceProgrammed(t.lab, web.spec.clusterIP!, 80, 8, 60_000);
  } finally { await store.close(); }
});

test('with both cores busy, flatnet check passes every rule on the 60-pod lab with the demo\'s Services, three times in a row', async () => {
  await underLoad(() => {
    for (let i = 1; i <= 3; i++) {
      const { status, report } = check();
      const failed = report.rules.filter((x) => x.status !== 'pass').map((x) => `rule ${x.rule} ${x.status}: ${x.failures.slice(0, 5).join('; ')}`);
      assert.equal(status, 0, `run ${i}: ${failed.join('\n')}`);
      assert.deepEqual(report.rules.map((x) => x.status), Array(10).fill('pass'), `run ${i}: ${failed.join('\n')}`);
      assert.deepEqual(report.unready, [], 'every pod was Ready');
    }
  });
});

test('with both cores busy, a pod whose input drops the check\'s port fails rules 1 and 2, naming exactly that pod', async () => {
  const victim = (await pods()).find((p) => p.metadata.name.startsWith('fill-'))!;
  const label = `demo/${victim.metadata.name}`;
  const nft = (script: string) => execFileSync('nsenter', [`--net=/run/netns/${netnsOf(victim)}`, 'nft', '-f', '-'], { input: script });
  nft('table inet broken {\n  chain drops {\n    type filter hook input priority 0; policy accept;\n    tcp dport 19999 drop\n  }\n}\n');
  try {
    const { status, report } = await underLoad(check);
    assert.equal(status, 1, 'the check fails');
    const [rule1, rule2] = [report.rules[0], report.rules[1]];
    assert.deepEqual([rule1.status, rule2.status], ['fail', 'fail']);
    const onNet = (await pods()).filter((p) => !p.spec.hostNetwork).length;
    assert.equal(rule1.failures.length, onNet - 1, 'every other pod fails to reach it');
    for (const f of rule1.failures) assert.match(f, new RegExp(`-> ${label} \\(.*timeout`), f);
    assert.equal(rule2.failures.length, 3, 'no node reaches it');
    for (const f of rule2.failures) assert.match(f, new RegExp(`^node node-\\d -> ${label} `), f);
    const rule3 = report.rules[2];
    assert.equal(rule3.failures.length, 1, 'nor does the host-network pod');
    assert.match(rule3.failures[0], new RegExp(`^demo/hostnet .* -> ${label} `));
    // Rule 6 stands on rule 1 (masquerade is told apart from NAT between pods): it says so, and only that.
    assert.deepEqual(report.rules[5].failures, ['rule 1 does not hold, so masquerade cannot be told apart from NAT between pods']);
    assert.deepEqual(report.rules.filter((x) => x.rule > 3 && x.rule !== 6).map((x) => `${x.rule} ${x.status}`),
      ['4 pass', '5 pass', '7 pass', '8 pass', '9 pass', '10 pass'], 'the rest hold');
  } finally { nft('delete table inet broken\n'); }
});

test('a pod whose server dies is not Ready (its port does not listen), leaves its Service\'s endpoints, and check reports it as not Ready, not as a failure', async () => {
  const half = (await pods()).find((p) => p.metadata.name === 'half')!;
  const readyOf = async () => (await pods()).find((p) => p.metadata.name === 'half')!.status?.conditions?.find((c) => c.type === 'Ready');
  const endpoints = async () => {
    const store = t.lab.store();
    try { return ((await listObjects(store, 'EndpointSlice', 'demo')) as EndpointSlice[]).filter((s) => s.metadata.name.startsWith('half-')).flatMap((s) => s.endpoints.filter((e) => e.conditions.ready)); } finally { await store.close(); }
  };
  assert.equal((await readyOf())?.status, 'True');
  assert.equal((await endpoints()).length, 1);
  const pids = spawnSync('ip', ['netns', 'pids', netnsOf(half)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  // The server itself (node flatnet.mjs serve), not the container's init, whose arguments name it too.
  const server = pids.find((pid) => {
    const argv = spawnSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).stdout.split('\0');
    const at = argv.findIndex((a) => a.endsWith('flatnet.mjs'));
    return at >= 0 && argv[at + 1] === 'serve';
  })!;
  assert.ok(server, 'the pod runs its server');
  process.kill(server, 'SIGKILL');
  const cond = await until('half to be not Ready', async () => { const c = await readyOf(); return c?.status === 'False' && c; });
  assert.deepEqual(cond, { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'ports not listening: 8080/tcp' });
  await until('half to leave its Service', async () => (await endpoints()).length === 0);

  // The check waits for it (bounded), then says so: a pod not Ready is no network failure.
  const r = t.cli('check');
  assert.equal(r.status, 0, r.stdout.slice(-3000));
  assert.match(r.stdout, /^\[WAIT\] pod demo\/half on node-\d is not Ready: ports not listening: 8080\/tcp$/m);
  assert.match(r.stdout, /^PASS: 10 rules passed, .*; 1 pod not Ready$/m);
  assert.match(r.stderr, /^waiting up to 30 s for 1 pod to be Ready: demo\/half$/m, 'it said what it waited for');
});
