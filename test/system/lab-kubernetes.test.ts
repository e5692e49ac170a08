// A lab whose agents read the Kubernetes API (`lab up --datastore kubernetes`), as a DaemonSet in a
// kubeadm cluster does: `flatnet check` passes every rule, policy included; each Node says its network is
// available; the agents' ServiceAccount is refused what deploy/flatnet.yaml's ClusterRole does not grant;
// and the agents' watches survive the API server restarting (a policy applied after it takes effect).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { labFor, type TestLab } from '../helpers/lab.js';
import { DEMO_MANIFESTS, DEMO_POLICY_MANIFESTS, DEMO_PODS, waitServiceProgrammed } from '../../src/lab/demo.js';
import { livePid } from '../../src/lab/processes.js';
import { objectKey } from '../../src/api/keys.js';
import type { Node, Service } from '../../src/api/types.js';

const scope = new TestScope('lk');
after(() => scope.cleanupSync());
let t: TestLab;
let adminKubeconfig: string;

/** kubectl as root with the lab's admin kubeconfig (127.0.0.1), or inside a node's namespace with the agents' one. */
function kubectl(args: string[], o: { netns?: string; kubeconfig?: string } = {}): { status: number; stdout: string; stderr: string } {
  const argv = ['kubectl', '--kubeconfig', o.kubeconfig ?? adminKubeconfig, ...args];
  const r = o.netns ? spawnSync('ip', ['netns', 'exec', o.netns, ...argv], { encoding: 'utf8', timeout: 20_000 })
    : spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  t = labFor(scope, 'k');
  const up = t.cli('lab', 'up', '--datastore', 'kubernetes');
  assert.equal(up.status, 0, up.stderr);
  assert.match(up.stdout, /agents read the Kubernetes API/);
  adminKubeconfig = t.cli('lab', 'kubeconfig').stdout.trim();
  await t.applyAndRun('demo.yaml', `${DEMO_MANIFESTS}---\n${DEMO_POLICY_MANIFESTS}`, DEMO_PODS, 90_000);
  const store = t.lab.store();
  try {
    const web = JSON.parse((await store.get(objectKey('Service', 'web', 'demo')))!.value) as Service;
    await waitServiceProgrammed(t.lab, web.spec.clusterIP!, 80, 8, 60_000);
  } finally { await store.close(); }
});

test('every agent reads the API, not etcd, and marks its Node NetworkUnavailable=False', async () => {
  for (const n of t.lab.plan().nodes) {
    const argv = readFileSync(`/proc/${livePid(t.lab.pidFile(`agent-${n.name}`))}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('--datastore') && argv[argv.indexOf('--datastore') + 1] === 'kubernetes', `agent-${n.name}: ${argv.join(' ')}`);
  }
  // The patch follows each agent's first route sync: wait for it, through the API as a user would look.
  const reasons = await until('every Node with NetworkUnavailable=False', () => {
    const nodes = JSON.parse(kubectl(['get', 'nodes', '-o', 'json']).stdout) as { items: Node[] };
    const conds = nodes.items.map((n) => (n.status?.conditions as Array<{ type: string; status: string; reason?: string }> | undefined)?.find((c) => c.type === 'NetworkUnavailable'));
    return conds.length === 3 && conds.every((c) => c?.status === 'False') ? conds.map((c) => c!.reason) : undefined;
  }, 60_000, 250);
  assert.deepEqual(reasons, ['FlatnetIsUp', 'FlatnetIsUp', 'FlatnetIsUp']);
});

test('flatnet check passes every rule, NetworkPolicy included, with kubernetes-mode agents', () => {
  const r = t.cli('check', '-o', 'json');
  const report = JSON.parse(r.stdout) as { pass: boolean; rules: Array<{ rule: number; status: string; failures: string[]; evidence: string[] }> };
  assert.equal(r.status, 0, JSON.stringify(report.rules.filter((x) => x.status === 'fail'), null, 1));
  assert.deepEqual(report.rules.map((x) => x.status), Array(11).fill('pass'), 'rules 1-6 (pods), 7-10 (Services), 11 (NetworkPolicy)');
  assert.match(report.rules[10].evidence[0], /[1-9]\d*\/[1-9]\d* denied pairs dropped/, 'rule 11 judged denied pairs, not none');
});

test("the agents' ServiceAccount may read and patch nodes/status, and nothing else", () => {
  const netns = t.lab.plan().nodes[0].netns;
  const kubeconfig = t.lab.agentKubeconfigPath;
  const asAgent = (args: string[]) => kubectl(args, { netns, kubeconfig });
  const list = asAgent(['get', 'pods', '-A', '-o', 'name']);
  assert.equal(list.status, 0, list.stderr);
  assert.equal(list.stdout.trim().split('\n').length, DEMO_PODS);
  const del = asAgent(['delete', 'pod', 'duo', '-n', 'demo', '--wait=false']);
  assert.equal(del.status, 1);
  assert.match(del.stderr, /pods "duo" is forbidden: User "system:serviceaccount:flatnet-system:flatnet" cannot delete resource "pods" in API group "" in the namespace "demo"/);
  const label = asAgent(['label', 'node', 'node-1', 'x=y']);
  assert.equal(label.status, 1);
  assert.match(label.stderr, /forbidden/);
  assert.match(asAgent(['get', 'secrets', '-A']).stderr, /forbidden/);
  assert.equal(kubectl(['get', 'pod', 'duo', '-n', 'demo', '-o', 'name']).stdout.trim(), 'pod/duo', 'duo still there');
});

test('after the API server restarts, the agents still follow changes: a new policy drops its traffic', async () => {
  const pidFile = t.lab.pidFile('apiserver-cp');
  const before = livePid(pidFile)!;
  process.kill(before, 'SIGKILL');
  await until('the supervisor restarts the control-plane API server', () => { const p = livePid(pidFile); return p && p !== before ? p : undefined; }, 30_000, 100);
  // demo/duo reaches demo/web's pods through the Service until a policy isolates them.
  const store = t.lab.store();
  let web: Service;
  try { web = JSON.parse((await store.get(objectKey('Service', 'web', 'demo')))!.value) as Service; } finally { await store.close(); }
  const probe = () => t.cli('exec', 'demo/duo', '--', 'flatnet', 'probe', `${web.spec.clusterIP}:80`, '--timeout', '1s');
  assert.equal(probe().status, 0, 'duo reaches web before the policy');
  const deny = join(scope.dir, 'deny.yaml');
  writeFileSync(deny, 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: deny-web, namespace: demo }\nspec: { podSelector: { matchLabels: { app: web } }, policyTypes: [Ingress] }\n');
  assert.equal(t.cli('apply', '-f', deny).status, 0);
  await until('duo is refused once every agent has the policy', () => (probe().status !== 0 ? true : undefined), 30_000, 200);
});

test('lab down removes everything a kubernetes-mode lab made (token kubeconfig, net-conf.json)', async () => {
  assert.deepEqual((await t.lab.down()).left, []);
});
