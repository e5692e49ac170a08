// Authentication and RBAC over real HTTPS: the lab API started as the lab starts it, the RBAC documents
// of deploy/flatnet.yaml stored as they are, and the agent's ServiceAccount token held to its ClusterRole.
// What a client sees is asserted: the status code and the Status body.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MemoryStore } from '../../src/store/memory.js';
import { makePki, readPki } from '../../src/apiserver/pki.js';
import { startApiServer } from '../../src/apiserver/server.js';
import { objectKey } from '../../src/api/keys.js';
import { issueServiceAccountToken, serviceAccountKey, signServiceAccountToken } from '../../src/apiserver/auth/tokens.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'fnt-apiauth-'));
const store = new MemoryStore();
const pki = makePki(join(dir, 'pki'));

/** deploy/flatnet.yaml's RBAC documents, at the keys the API stores them under. */
const RBAC_KEYS: Record<string, (m: { name: string; namespace?: string }) => string> = {
  ClusterRole: (m) => `/registry/clusterroles/${m.name}`,
  ClusterRoleBinding: (m) => `/registry/clusterrolebindings/${m.name}`,
  Role: (m) => `/registry/roles/${m.namespace}/${m.name}`,
  RoleBinding: (m) => `/registry/rolebindings/${m.namespace}/${m.name}`,
};
const docs = parseAllDocuments(readFileSync('deploy/flatnet.yaml', 'utf8')).map((d) => d.toJSON());
for (const d of docs) if (RBAC_KEYS[d.kind]) await store.put(RBAC_KEYS[d.kind](d.metadata), JSON.stringify(d));
const agentSa = docs.find((d) => d.kind === 'ServiceAccount');
assert.equal(`${agentSa.metadata.namespace}/${agentSa.metadata.name}`, 'flatnet-system/flatnet');
const SA_USER = 'system:serviceaccount:flatnet-system:flatnet';
await store.put(serviceAccountKey('flatnet-system', 'flatnet'), JSON.stringify({ ...agentSa, metadata: { ...agentSa.metadata, uid: 'a1b2c3' } }));
await store.put(objectKey('Node', 'node-1'), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: {} }));
await store.put(objectKey('Pod', 'web-1', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'default' }, spec: { nodeName: 'node-1', containers: [{ name: 'c' }] } }));

const server = await startApiServer({ store, pki });
after(async () => { await server.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); });

type As = { admin: true } | { token: string };
const ADMIN: As = { admin: true };

function call(as: As, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    request({
      host: '127.0.0.1', port: server.port, path, method, ca: pki.caCert,
      ...('admin' in as ? { cert: pki.clientCert, key: pki.clientKey } : {}),
      headers: { ...('token' in as ? { authorization: `Bearer ${as.token}` } : {}), ...(text ? { 'content-type': contentType } : {}) },
    }, (res) => {
      let out = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { out += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out ? JSON.parse(out) : undefined }));
    }).on('error', reject).end(text);
  });
}

const forbidden = (message: string, details: object) =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details, code: 403 });
const unauthorized = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };
const agent = async (): Promise<As> => ({ token: await issueServiceAccountToken(store, pki, 'flatnet-system', 'flatnet') });
const NODE_STATUS_PATCH = { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'FlatnetIsUp' }] } };

test('the admin certificate (system:masters) may do anything', async () => {
  assert.equal((await call(ADMIN, 'GET', '/api/v1/pods')).status, 200);
  assert.equal((await call(ADMIN, 'GET', '/api/v1/namespaces/default/secrets')).status !== 403, true);
  const who = await call(ADMIN, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  assert.deepEqual(who.body.status.userInfo, { username: 'flatnet-admin', groups: ['system:masters', 'system:authenticated'] });
});

test('the agent token: list pods, get a node, discovery, and patch nodes/status (the NetworkUnavailable condition)', async () => {
  const as = await agent();
  const pods = await call(as, 'GET', '/api/v1/pods');
  assert.equal(pods.status, 200);
  assert.deepEqual(pods.body.items.map((p: any) => p.metadata.name), ['web-1']);
  assert.equal((await call(as, 'GET', '/api/v1/nodes/node-1')).body.metadata.name, 'node-1');
  assert.equal((await call(as, 'GET', '/apis')).status, 200);
  assert.equal((await call(as, 'GET', '/version')).status, 200);
  const who = await call(as, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {});
  assert.deepEqual(who.body.status.userInfo, { username: SA_USER, uid: 'a1b2c3', groups: ['system:serviceaccounts', 'system:serviceaccounts:flatnet-system', 'system:authenticated'] });
  const patch = await call(as, 'PATCH', '/api/v1/nodes/node-1/status', NODE_STATUS_PATCH, 'application/strategic-merge-patch+json');
  assert.equal(patch.status, 200, JSON.stringify(patch.body));
  const stored = JSON.parse((await store.get(objectKey('Node', 'node-1')))!.value);
  assert.equal(stored.status.conditions.find((c: any) => c.type === 'NetworkUnavailable').status, 'False');
});

test('the agent token is refused what its ClusterRole does not grant: 403 in kube-apiserver\'s words', async () => {
  const as = await agent();
  const cannot = (verb: string, resource: string, scope: string) => `User "${SA_USER}" cannot ${verb} resource "${resource}" in API group "" ${scope}`;
  assert.deepEqual(await call(as, 'DELETE', '/api/v1/namespaces/default/pods/web-1'),
    { status: 403, body: forbidden(`pods "web-1" is forbidden: ${cannot('delete', 'pods', 'in the namespace "default"')}`, { name: 'web-1', group: '', kind: 'pods' }) });
  assert.deepEqual(await call(as, 'GET', '/api/v1/secrets'),
    { status: 403, body: forbidden(`secrets is forbidden: ${cannot('list', 'secrets', 'at the cluster scope')}`, { group: '', kind: 'secrets' }) });
  assert.deepEqual(await call(as, 'PATCH', '/api/v1/nodes/node-1', { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json'),
    { status: 403, body: forbidden(`nodes "node-1" is forbidden: ${cannot('patch', 'nodes', 'at the cluster scope')}`, { name: 'node-1', group: '', kind: 'nodes' }) });
  const create = await call(as, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } });
  assert.deepEqual([create.status, create.body.message], [403, `pods is forbidden: ${cannot('create', 'pods', 'in the namespace "default"')}`]);
  const token = await call(as, 'POST', '/api/v1/namespaces/flatnet-system/serviceaccounts/flatnet/token', {});
  assert.equal(token.status, 403, 'the agent cannot mint tokens');
  assert.equal((await call(as, 'GET', '/metrics')).body.message, `forbidden: User "${SA_USER}" cannot get path "/metrics"`);
  assert.equal((await call(ADMIN, 'GET', '/api/v1/pods/web-1')).status !== 403, true);
});

test('access and rules reviews answer truthfully for the caller', async () => {
  const as = await agent();
  const can = async (resourceAttributes: object) => {
    const r = await call(as, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes } });
    assert.equal(r.status, 201);
    return r.body.status.allowed;
  };
  assert.equal(await can({ verb: 'list', resource: 'pods', namespace: 'default' }), true);
  assert.equal(await can({ verb: 'patch', resource: 'nodes', subresource: 'status', name: 'node-1' }), true);
  assert.equal(await can({ verb: 'patch', resource: 'nodes', name: 'node-1' }), false);
  assert.equal(await can({ verb: 'delete', resource: 'pods', namespace: 'default' }), false);
  assert.equal(await can({ verb: 'watch', group: 'networking.k8s.io', resource: 'networkpolicies' }), true);
  const rules = await call(as, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', { spec: { namespace: 'default' } });
  assert.equal(rules.status, 201);
  assert.deepEqual(rules.body.status.resourceRules.find((r: any) => r.resources.includes('nodes/status')), { verbs: ['patch'], apiGroups: [''], resources: ['nodes/status'] });
  assert.equal(rules.body.status.incomplete, false);
});

test('TokenRequest: 201 with a working token, 404 for a missing ServiceAccount, 422 below ten minutes', async () => {
  const path = '/api/v1/namespaces/flatnet-system/serviceaccounts/flatnet/token';
  const r = await call(ADMIN, 'POST', path, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 1200 } });
  assert.equal(r.status, 201);
  assert.equal(r.body.kind, 'TokenRequest');
  assert.equal(r.body.spec.expirationSeconds, 1200);
  const expires = Date.parse(r.body.status.expirationTimestamp) - Date.now();
  assert.ok(expires > 1100_000 && expires <= 1201_000, `expires in ${expires} ms`);
  assert.equal((await call({ token: r.body.status.token }, 'GET', '/api/v1/pods')).status, 200);
  const missing = await call(ADMIN, 'POST', '/api/v1/namespaces/flatnet-system/serviceaccounts/nobody/token', {});
  assert.deepEqual([missing.status, missing.body.reason, missing.body.message], [404, 'NotFound', 'serviceaccounts "nobody" not found']);
  const short = await call(ADMIN, 'POST', path, { spec: { expirationSeconds: 60 } });
  assert.deepEqual([short.status, short.body.reason], [422, 'Invalid']);
  assert.equal(short.body.message, 'TokenRequest.authentication.k8s.io "flatnet" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes');
});

test('401: no credential, a forged or expired token, a token of a deleted or recreated ServiceAccount', async () => {
  const refused = async (as: As) => assert.deepEqual(await call(as, 'GET', '/api/v1/pods'), { status: 401, body: unauthorized });
  await refused({ token: '' } as As);
  await refused({ token: 'not-a-jwt' });
  const sa = JSON.parse((await store.get(serviceAccountKey('flatnet-system', 'flatnet')))!.value);
  await refused({ token: signServiceAccountToken(pki, sa, 600, { now: Date.now() - 3600_000 }).token });
  const [h, , s] = (await agent() as { token: string }).token.split('.');
  const admin = Buffer.from(JSON.stringify({ sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url');
  await refused({ token: `${h}.${admin}.${s}` });
  await store.put(serviceAccountKey('demo', 'gone'), JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'gone', namespace: 'demo', uid: 'u1' } }));
  const gone = await issueServiceAccountToken(store, pki, 'demo', 'gone');
  assert.equal((await call({ token: gone }, 'GET', '/version')).status, 200);
  await store.put(serviceAccountKey('demo', 'gone'), JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'gone', namespace: 'demo', uid: 'u2' } }));
  await refused({ token: gone });
  await store.delete(serviceAccountKey('demo', 'gone'));
  await refused({ token: gone });
});

test('a Role and RoleBinding written to the store apply within a moment, in their namespace only', async () => {
  const as = await agent();
  assert.equal((await call(as, 'GET', '/api/v1/namespaces/demo/configmaps/settings')).status, 403);
  await store.put('/registry/roles/demo/config-reader', JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role',
    metadata: { name: 'config-reader', namespace: 'demo' }, rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['settings'], verbs: ['get'] }] }));
  await store.put('/registry/rolebindings/demo/agent-config', JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
    metadata: { name: 'agent-config', namespace: 'demo' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'config-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'flatnet', namespace: 'flatnet-system' }] }));
  await until('the new RoleBinding to let the agent read demo/settings', async () => (await call(as, 'GET', '/api/v1/namespaces/demo/configmaps/settings')).status !== 403, 10_000);
  assert.equal((await call(as, 'GET', '/api/v1/namespaces/demo/configmaps/other')).status, 403, 'resourceNames');
  assert.equal((await call(as, 'GET', '/api/v1/namespaces/default/configmaps/settings')).status, 403, 'another namespace');
  await store.delete('/registry/rolebindings/demo/agent-config');
  await until('the deleted RoleBinding to stop applying', async () => (await call(as, 'GET', '/api/v1/namespaces/demo/configmaps/settings')).status === 403, 10_000);
});

test('the token signing key lives in the PKI directory, mode 0600; a PKI made before it existed gets one', () => {
  const pkiDir = join(dir, 'pki');
  assert.equal(statSync(join(pkiDir, 'sa.key')).mode & 0o777, 0o600);
  assert.equal(readPki(pkiDir).saKey, pki.saKey, 'kept across starts: tokens handed out stay valid');
  const old = join(dir, 'old-pki');
  makePki(old);
  rmSync(join(old, 'sa.key'));
  rmSync(join(old, 'sa.pub'));
  assert.match(readPki(old).saKey, /BEGIN PRIVATE KEY/);
  assert.ok(existsSync(join(old, 'sa.pub')));
});
