// The machine's real kubectl (1.32) against a lab's Kubernetes API: the clients no one here wrote read
// nodes, pods (with -o wide, -A, selectors), every kind as YAML, a missing object's error, and a watch
// that sees a pod `flatnet apply` creates; and write: apply (created, then configured), label, delete
// with grace, scale, deploy/flatnet.yaml's extra kinds, and flatnet apply's validation errors as kubectl shows them.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { TestScope } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { labFor, type TestLab } from '../helpers/lab.js';
import { POD_PREFIX, objectKey } from '../../src/api/keys.js';
import { livePid } from '../../src/lab/processes.js';
import type { Pod } from '../../src/api/types.js';

const scope = new TestScope('kc');
after(() => scope.cleanupSync());
let t: TestLab;
let kubeconfig: string;

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata: { name: demo }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: demo }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec: { selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web-ingress, namespace: demo }
spec: { podSelector: { matchLabels: { app: web } }, ingress: [{ from: [{ podSelector: {} }] }] }
`;

function kubectl(...args: string[]): { status: number; stdout: string; stderr: string } {
  // kubectl delete waits for the kubelet to remove a pod: generous under the shared machine's load.
  const r = spawnSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
const ok = (...args: string[]): string => {
  const r = kubectl(...args);
  assert.equal(r.status, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
/** A table's rows as arrays of cells, the header first. */
const rows = (text: string): string[][] => text.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));

before(async () => {
  t = labFor(scope, 'k');
  const up = t.cli('lab', 'up');
  assert.equal(up.status, 0, up.stderr);
  const path = t.cli('lab', 'kubeconfig');
  assert.equal(path.status, 0, path.stderr);
  kubeconfig = path.stdout.trim();
  await t.applyAndRun('demo.yaml', MANIFEST, 2, 30_000);
});

test('lab status names the API and its kubeconfig', () => {
  assert.match(t.cli('lab', 'status').stdout, new RegExp(`kubernetes API: https://127\\.0\\.0\\.1:\\d+, kubeconfig ${kubeconfig}`));
});

test('kubectl get nodes -o wide: every node Ready with its InternalIP', () => {
  const table = rows(ok('get', 'nodes', '-o', 'wide'));
  assert.deepEqual(table[0].slice(0, 6), ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', 'INTERNAL-IP']);
  const plan = t.lab.plan();
  assert.deepEqual(table.slice(1).map((r) => [r[0], r[1], r[5]]), plan.nodes.map((n) => [n.name, 'Ready', n.ip]));
});

test('kubectl get pods -A -o wide: the pods, their IPs and nodes as the store has them', async () => {
  const store = t.lab.store();
  let pods: Pod[];
  try { pods = (await store.list(POD_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Pod); } finally { await store.close(); }
  const table = rows(ok('get', 'pods', '-A', '-o', 'wide'));
  assert.deepEqual(table[0], ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);
  assert.deepEqual(table.slice(1).map((r) => [r[0], r[1], r[2], r[3], r[6], r[7]]).sort(),
    pods.map((p) => ['demo', p.metadata.name, '1/1', 'Running', p.status!.podIP!, p.spec.nodeName!]).sort());
  const node = pods[0].spec.nodeName!;
  const onNode = ok('get', 'pods', '-A', '--field-selector', `spec.nodeName=${node}`, '-o', 'name').trim().split('\n');
  assert.deepEqual(onNode, pods.filter((p) => p.spec.nodeName === node).map((p) => `pod/${p.metadata.name}`).sort());
  assert.equal(ok('get', 'pods', '-n', 'demo', '-l', 'app=web', '-o', 'name').trim().split('\n').length, 2);
  assert.match(ok('get', 'pods', '-n', 'demo', '-l', 'app!=web').trim() + kubectl('get', 'pods', '-n', 'demo', '-l', 'app!=web').stderr, /No resources found in demo namespace/);
});

test('kubectl get <kind> -o yaml of every kind: objects with a resourceVersion, lists with the store revision', () => {
  const kinds: Array<[string, string, string]> = [
    ['nodes', 'Node', 'v1'], ['namespaces', 'Namespace', 'v1'], ['pods', 'Pod', 'v1'], ['services', 'Service', 'v1'],
    ['endpointslices', 'EndpointSlice', 'discovery.k8s.io/v1'], ['networkpolicies', 'NetworkPolicy', 'networking.k8s.io/v1'], ['deployments', 'Deployment', 'apps/v1'],
  ];
  for (const [resource, kind, apiVersion] of kinds) {
    const list = parseYaml(ok('get', resource, '-A', '-o', 'yaml')) as { kind: string; items: Array<{ kind: string; apiVersion: string; metadata: { name: string; resourceVersion?: string } }> };
    assert.equal(list.kind, 'List', resource);
    assert.ok(list.items.length > 0, `${resource}: no items`);
    for (const item of list.items) {
      assert.deepEqual([item.kind, item.apiVersion], [kind, apiVersion], resource);
      assert.match(item.metadata.resourceVersion ?? '', /^\d+$/, `${resource}/${item.metadata.name}: resourceVersion`);
    }
  }
  const one = parseYaml(ok('get', 'deployment', 'web', '-n', 'demo', '-o', 'yaml')) as { kind: string; spec: { replicas: number } };
  assert.deepEqual([one.kind, one.spec.replicas], ['Deployment', 2]);
});

test('a missing object: kubectl prints the API\'s NotFound Status and fails', () => {
  const r = kubectl('get', 'pod', 'nope', '-n', 'demo');
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), 'Error from server (NotFound): pods "nope" not found');
  assert.equal(kubectl('get', 'networkpolicy', 'nope', '-n', 'demo').stderr.trim(), 'Error from server (NotFound): networkpolicies.networking.k8s.io "nope" not found');
});

test('kubectl get pods -w sees a pod created by flatnet apply appear, then run', async () => {
  const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'get', 'pods', '-A', '-w'], { stdio: ['ignore', 'pipe', 'pipe'] });
  scope.adoptProcess(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  try {
    // The list has been printed (the web pods): what comes after arrives on the watch, from the list's resourceVersion.
    await until('the initial list', () => out.split('\n').filter((l) => l.startsWith('demo ')).length >= 2, 15_000, 50);
    const file = join(scope.dir, 'late.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata: { name: late, namespace: default }\nspec: { containers: [{ name: s, command: [flatnet, serve, --port, "8080"] }] }\n');
    const r = t.cli('apply', '-f', file);
    assert.equal(r.status, 0, r.stderr);
    await until('the new pod on the watch', () => /^default\s+late\s/m.test(out), 15_000, 50);
    await until('the new pod Running on the watch', () => /^default\s+late\s+1\/1\s+Running/m.test(out), 30_000, 50);
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
});

test('a watch from a resourceVersion etcd has compacted: an ERROR event with a 410 Status, and the stream ends', async () => {
  const store = t.lab.store();
  try { await store.compact((await store.list(POD_PREFIX)).revision); } finally { await store.close(); }
  const out = ok('get', '--raw', '/api/v1/pods?watch=1&resourceVersion=1');
  const events = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { kind: string; code: number; reason: string; message: string } });
  assert.equal(events.length, 1, out);
  assert.deepEqual([events[0].type, events[0].object.kind, events[0].object.code, events[0].object.reason], ['ERROR', 'Status', 410, 'Expired']);
  assert.match(events[0].object.message, /^too old resource version: 1 \(\d+\)$/);
});

/** Writes `text` to a file in the scope's directory; returns its path. */
const manifest = (name: string, text: string): string => {
  const file = join(scope.dir, name);
  writeFileSync(file, text);
  return file;
};

const APP = (label: string) => `apiVersion: v1
kind: Pod
metadata: { name: kc-app, namespace: demo, labels: { app: kc, rev: "${label}" } }
spec: { containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Service
metadata: { name: kc-app, namespace: demo }
spec: { selector: { app: kc }, ports: [{ port: 80, targetPort: 8080 }] }
`;

test('kubectl apply -f: created, then configured by a change, unchanged otherwise; delete -f removes them', async () => {
  const file = manifest('app.yaml', APP('1'));
  assert.equal(ok('apply', '-f', file).trim(), 'pod/kc-app created\nservice/kc-app created');
  // The Service got its ClusterIP as `flatnet apply` allocates it.
  assert.match(ok('get', 'service', 'kc-app', '-n', 'demo', '-o', 'jsonpath={.spec.clusterIP}'), /^\d+\.\d+\.\d+\.\d+$/);
  writeFileSync(file, APP('2'));
  assert.equal(ok('apply', '-f', file).trim(), 'pod/kc-app configured\nservice/kc-app unchanged');
  assert.equal(ok('get', 'pod', 'kc-app', '-n', 'demo', '-o', 'jsonpath={.metadata.labels.rev}'), '2');
  await until('the pod running', () => ok('get', 'pod', 'kc-app', '-n', 'demo', '-o', 'jsonpath={.status.phase}') === 'Running', 30_000, 200);
  // kubectl waits for the pod to be gone: the lab's kubelet stops it and removes the object.
  assert.equal(ok('delete', '-f', file).trim(), 'pod "kc-app" deleted\nservice "kc-app" deleted');
  assert.equal(kubectl('get', 'pod', 'kc-app', '-n', 'demo').stderr.trim(), 'Error from server (NotFound): pods "kc-app" not found');
});

test('kubectl label pod: the label is stored and -o jsonpath shows it', () => {
  const pod = ok('get', 'pods', '-n', 'demo', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.name}');
  assert.equal(ok('label', 'pod', pod, '-n', 'demo', 'kc=yes').trim(), `pod/${pod} labeled`);
  assert.equal(ok('get', 'pod', pod, '-n', 'demo', '-o', 'jsonpath={.metadata.labels.kc}'), 'yes');
  assert.equal(ok('label', 'pod', pod, '-n', 'demo', 'kc-').trim(), `pod/${pod} unlabeled`);
});

test('a manifest flatnet apply refuses: kubectl shows the field and the value, and exits 1', () => {
  const file = manifest('bad.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: { name: kc-bad, namespace: demo }\nspec: { containers: [{ name: c, ports: [{ containerPort: 70000 }] }] }\n');
  const r = kubectl('apply', '-f', file);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), 'The Pod "kc-bad" is invalid: spec.containers[0].ports[0].containerPort: 70000 is not a port (1-65535)');
  assert.equal(kubectl('get', 'pod', 'kc-bad', '-n', 'demo').status, 1, 'nothing was stored');
});

test('kubectl delete pod with a grace period: the pod gets deletionTimestamp and stays until it stops', async () => {
  // A container that ignores SIGTERM, so the pod stays terminating for the whole grace period.
  const file = manifest('stubborn.yaml', `apiVersion: v1
kind: Pod
metadata: { name: kc-stubborn, namespace: demo }
spec: { containers: [{ name: c, command: [sh, -c, 'trap "" TERM; exec sleep infinity'] }] }
`);
  ok('apply', '-f', file);
  await until('the pod running', () => ok('get', 'pod', 'kc-stubborn', '-n', 'demo', '-o', 'jsonpath={.status.phase}') === 'Running', 30_000, 200);
  assert.equal(ok('delete', 'pod', 'kc-stubborn', '-n', 'demo', '--grace-period=120', '--wait=false').trim(), 'pod "kc-stubborn" deleted');
  const store = t.lab.store();
  try {
    const kv = await store.get(objectKey('Pod', 'kc-stubborn', 'demo'));
    const pod = JSON.parse(kv!.value) as Pod;
    assert.equal(pod.metadata.deletionGracePeriodSeconds, 120);
    assert.ok(pod.metadata.deletionTimestamp);
  } finally { await store.close(); }
  assert.match(ok('get', 'pod', 'kc-stubborn', '-n', 'demo', '-o', 'jsonpath={.metadata.deletionTimestamp}'), /^\d{4}-/);
  // --grace-period=0 --force removes it at once; the kubelet then stops what is left.
  assert.match(kubectl('delete', 'pod', 'kc-stubborn', '-n', 'demo', '--grace-period=0', '--force').stdout, /pod "kc-stubborn" force deleted/);
  assert.equal(kubectl('get', 'pod', 'kc-stubborn', '-n', 'demo').status, 1);
});

test('kubectl apply -f deploy/flatnet.yaml: every kind stored (RBAC, ServiceAccount, ConfigMap, DaemonSet) and readable as YAML', () => {
  const deploy = fileURLToPath(new URL('../../../deploy/flatnet.yaml', import.meta.url));
  const first = kubectl('apply', '-f', deploy);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.stderr, '', 'no warnings');
  assert.match(first.stdout, /clusterrole\.rbac\.authorization\.k8s\.io\/flatnet created/);
  assert.match(ok('apply', '-f', deploy), /daemonset\.apps\/flatnet unchanged/);
  const role = parseYaml(ok('get', 'clusterrole', 'flatnet', '-o', 'yaml')) as { kind: string; metadata: { resourceVersion: string }; rules: Array<{ resources: string[]; verbs: string[] }> };
  assert.equal(role.kind, 'ClusterRole');
  assert.match(role.metadata.resourceVersion, /^\d+$/);
  assert.ok(role.rules.some((r) => r.resources.includes('nodes/status') && r.verbs.includes('patch')));
  const kinds: Array<[string, string]> = [['serviceaccount', 'ServiceAccount'], ['configmap', 'ConfigMap'], ['daemonset', 'DaemonSet'], ['clusterrolebinding', 'ClusterRoleBinding']];
  for (const [resource, kind] of kinds) {
    const list = parseYaml(ok('get', resource, '-A', '-o', 'yaml')) as { items: Array<{ kind: string; metadata: { name: string } }> };
    assert.ok(list.items.some((i) => i.kind === kind && i.metadata.name.startsWith('flatnet')), resource);
  }
  // The namespace takes its contents with it at once (as `flatnet delete ns` does): what follows it is already gone.
  ok('delete', '-f', deploy, '--ignore-not-found');
  assert.equal(kubectl('get', 'clusterrole', 'flatnet').status, 1);
  assert.equal(kubectl('get', 'serviceaccount', 'flatnet', '-n', 'flatnet-system').status, 1);
});

test('kubectl scale deployment: the lab runs the new number of pods', async () => {
  assert.equal(ok('scale', 'deployment', 'web', '-n', 'demo', '--replicas=3').trim(), 'deployment.apps/web scaled');
  const running = () => ok('get', 'pods', '-n', 'demo', '-l', 'app=web', '-o', 'jsonpath={.items[*].status.phase}').split(' ').filter((p) => p === 'Running').length;
  await until('3 web pods running', () => running() === 3, 60_000, 200);
  ok('scale', 'deployment', 'web', '-n', 'demo', '--replicas=2');
  await until('2 web pods', () => ok('get', 'pods', '-n', 'demo', '-l', 'app=web', '-o', 'name').trim().split('\n').length === 2, 60_000, 200);
});

test('the supervisor restarts a killed API server on the same port: the kubeconfig stays good', async () => {
  const before = readFileSync(kubeconfig, 'utf8');
  const pid = livePid(t.lab.pidFile('apiserver'));
  assert.ok(pid !== undefined, 'the API server runs');
  process.kill(pid, 'SIGKILL');
  await until('a new API server answering', () => {
    const now = livePid(t.lab.pidFile('apiserver'));
    return now !== undefined && now !== pid && kubectl('get', 'nodes', '-o', 'name').status === 0;
  }, 20_000, 100);
  assert.equal(readFileSync(kubeconfig, 'utf8'), before);
  assert.match(t.cli('lab', 'status').stdout, /^apiserver\s+\d+\s+running\s+1\s+signal SIGKILL/m);
});
