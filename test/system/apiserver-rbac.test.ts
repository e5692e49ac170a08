// The machine's kubectl (1.32) against the lab API's authentication and RBAC: `kubectl create token`
// mints the agent's token, and with a kubeconfig holding only that token `auth can-i`, `auth whoami`,
// `get` and `delete` see exactly what deploy/flatnet.yaml's ClusterRole grants. The API runs in this
// process over a memory store (no lab needed): kubectl is the client no one here wrote.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MemoryStore } from '../../src/store/memory.js';
import { kubeconfigText, makePki } from '../../src/apiserver/pki.js';
import { startApiServer } from '../../src/apiserver/server.js';
import { objectKey } from '../../src/api/keys.js';
import { serviceAccountKey, verifyJwt } from '../../src/apiserver/auth/tokens.js';
import { tokenKubeconfigText } from '../../src/lab/control-plane.js';

const dir = mkdtempSync(join(tmpdir(), 'fnt-rbac-'));
const store = new MemoryStore();
const pki = makePki(join(dir, 'pki'));
const RBAC_PREFIX: Record<string, string> = { ClusterRole: '/registry/clusterroles/', ClusterRoleBinding: '/registry/clusterrolebindings/' };
for (const d of parseAllDocuments(readFileSync('deploy/flatnet.yaml', 'utf8')).map((x) => x.toJSON())) {
  if (RBAC_PREFIX[d.kind]) await store.put(`${RBAC_PREFIX[d.kind]}${d.metadata.name}`, JSON.stringify(d));
  if (d.kind === 'ServiceAccount') await store.put(serviceAccountKey(d.metadata.namespace, d.metadata.name), JSON.stringify({ ...d, metadata: { ...d.metadata, uid: 'sa-uid-1' } }));
}
await store.put(objectKey('Namespace', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
await store.put(objectKey('Node', 'node-1'), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: {} }));
await store.put(objectKey('Pod', 'web-1', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'default' }, spec: { nodeName: 'node-1', containers: [{ name: 'c' }] } }));
const server = await startApiServer({ store, pki });
after(async () => { await server.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); });

const admin = join(dir, 'admin.kubeconfig');
writeFileSync(admin, kubeconfigText('rbac', server.url, pki), { mode: 0o600 });
const SA_USER = 'system:serviceaccount:flatnet-system:flatnet';

/** kubectl run asynchronously: the API answers from this very process, so a blocking spawn would starve it. */
function kubectl(kubeconfig: string, ...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    // A kubeconfig without usable credentials makes kubectl prompt for a username: never wait on that.
    child.stdin?.end();
  });
}

/** A table's rows as arrays of cells, the header first. */
const rows = (text: string): string[][] => text.trim().split('\n').map((l) => l.trim().split(/\s{2,}/));

async function agentKubeconfig(...extra: string[]): Promise<{ path: string; token: string }> {
  const r = await kubectl(admin, 'create', 'token', 'flatnet', '-n', 'flatnet-system', ...extra);
  assert.equal(r.status, 0, r.stderr);
  const token = r.stdout.trim();
  const path = join(dir, `agent-${Date.now()}-${Math.random().toString(36).slice(2)}.kubeconfig`);
  writeFileSync(path, tokenKubeconfigText({ cluster: 'rbac', server: server.url, caCert: pki.caCert, user: 'flatnet-agent', token }), { mode: 0o600 });
  return { path, token };
}

test('kubectl create token: a token for the ServiceAccount, its lifetime from --duration; a missing one is NotFound', async () => {
  const { token } = await agentKubeconfig('--duration', '20m');
  const claims = verifyJwt(token, pki.saPub) as { sub: string; exp: number; iat: number };
  assert.deepEqual([claims.sub, claims.exp - claims.iat], [SA_USER, 1200]);
  const missing = await kubectl(admin, 'create', 'token', 'nobody', '-n', 'flatnet-system');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /serviceaccounts "nobody" not found/);
});

test('kubectl auth can-i (and --list) with the agent token answers what the ClusterRole grants', async () => {
  const { path } = await agentKubeconfig();
  const canI = async (...args: string[]) => {
    const r = await kubectl(path, 'auth', 'can-i', ...args);
    return `${r.status} ${r.stdout.trim()}`;
  };
  assert.equal(await canI('list', 'pods', '-A'), '0 yes');
  assert.equal(await canI('watch', 'networkpolicies.networking.k8s.io', '-n', 'default'), '0 yes');
  assert.equal(await canI('patch', 'nodes', '--subresource=status'), '0 yes');
  assert.equal(await canI('patch', 'nodes'), '1 no');
  assert.equal(await canI('delete', 'pods', '-n', 'default'), '1 no');
  assert.equal(await canI('create', 'pods', '-n', 'default'), '1 no');
  assert.equal(await canI('list', 'secrets', '-n', 'kube-system'), '1 no');
  assert.equal(await canI('create', 'serviceaccounts/token', '-n', 'flatnet-system'), '1 no');
  const list = await kubectl(path, 'auth', 'can-i', '--list', '-n', 'default');
  assert.equal(list.status, 0, list.stderr);
  const rules = rows(list.stdout);
  assert.deepEqual(rules[0], ['Resources', 'Non-Resource URLs', 'Resource Names', 'Verbs']);
  assert.ok(rules.some((r) => r[0] === 'nodes/status' && r.at(-1) === '[patch]'), list.stdout);
  assert.ok(rules.some((r) => r[0] === 'networkpolicies.networking.k8s.io' && r.at(-1) === '[get list watch]'), list.stdout);
  const whoami = await kubectl(path, 'auth', 'whoami');
  assert.equal(whoami.status, 0, whoami.stderr);
  assert.match(whoami.stdout, new RegExp(`Username\\s+${SA_USER}`));
  assert.equal((await kubectl(admin, 'auth', 'can-i', '*', '*')).stdout.trim(), 'yes', 'the admin certificate is system:masters');
});

test('kubectl with the agent token: reads what it may, and a delete and a label are refused with kube-apiserver\'s message', async () => {
  const { path } = await agentKubeconfig();
  const pods = await kubectl(path, 'get', 'pods', '-A', '-o', 'name');
  assert.equal(pods.status, 0, pods.stderr);
  assert.equal(pods.stdout.trim(), 'pod/web-1');
  const del = await kubectl(path, 'delete', 'pod', 'web-1', '-n', 'default');
  assert.equal(del.status, 1);
  assert.match(del.stderr, new RegExp(`Error from server \\(Forbidden\\): pods "web-1" is forbidden: User "${SA_USER}" cannot delete resource "pods" in API group "" in the namespace "default"`));
  assert.ok(await store.get(objectKey('Pod', 'web-1', 'default')), 'the pod is still there');
  const label = await kubectl(path, 'label', 'node', 'node-1', 'x=y');
  assert.equal(label.status, 1);
  assert.match(label.stderr, new RegExp(`nodes "node-1" is forbidden: User "${SA_USER}" cannot patch resource "nodes" in API group "" at the cluster scope`));
});

test('a deleted ServiceAccount\'s token is refused: kubectl reports Unauthorized', async () => {
  const { path } = await agentKubeconfig();
  assert.equal((await kubectl(path, 'get', 'pods', '-A', '-o', 'name')).status, 0);
  const key = serviceAccountKey('flatnet-system', 'flatnet');
  const kept = (await store.get(key))!.value;
  await store.delete(key);
  try {
    const r = await kubectl(path, 'get', 'pods', '-A');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Unauthorized|must be logged in/);
  } finally { await store.put(key, kept); }
});

test('a ServiceAccount made with kubectl apply gets tokens; a RoleBinding applied with kubectl grants it in its namespace', async () => {
  const manifest = join(dir, 'reader.yaml');
  writeFileSync(manifest, [
    'apiVersion: v1', 'kind: ServiceAccount', 'metadata: { name: reader, namespace: default }', '---',
    'apiVersion: rbac.authorization.k8s.io/v1', 'kind: Role', 'metadata: { name: pod-reader, namespace: default }',
    'rules: [{ apiGroups: [""], resources: [pods], verbs: [get, list] }]', '---',
    'apiVersion: rbac.authorization.k8s.io/v1', 'kind: RoleBinding', 'metadata: { name: reader, namespace: default }',
    'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader }',
    'subjects: [{ kind: ServiceAccount, name: reader, namespace: default }]', ''].join('\n'));
  const applied = await kubectl(admin, 'apply', '-f', manifest);
  assert.equal(applied.status, 0, applied.stderr);
  const token = await kubectl(admin, 'create', 'token', 'reader', '-n', 'default');
  assert.equal(token.status, 0, token.stderr);
  const path = join(dir, 'reader.kubeconfig');
  writeFileSync(path, tokenKubeconfigText({ cluster: 'rbac', server: server.url, caCert: pki.caCert, user: 'reader', token: token.stdout.trim() }), { mode: 0o600 });
  const inDefault = await kubectl(path, 'get', 'pods', '-n', 'default', '-o', 'name');
  assert.equal(inDefault.status, 0, inDefault.stderr);
  assert.equal(inDefault.stdout.trim(), 'pod/web-1');
  const everywhere = await kubectl(path, 'get', 'pods', '-A');
  assert.equal(everywhere.status, 1);
  assert.match(everywhere.stderr, /pods is forbidden: User "system:serviceaccount:default:reader" cannot list resource "pods" in API group "" at the cluster scope/);
  const removed = await kubectl(admin, 'delete', '-f', manifest);
  assert.equal(removed.status, 0, removed.stderr);
  assert.equal((await kubectl(path, 'get', 'pods', '-n', 'default')).status, 1, 'the deleted ServiceAccount\'s token no longer works');
});
