// Authentication and RBAC of the lab API, without a server: ES256 JWTs, ServiceAccount tokens (claims,
// expiry, the ServiceAccount's existence and uid), request attributes from method and path, RBAC rule
// matching (wildcards, resourceNames, subresources, a RoleBinding of a ClusterRole) and the 403 wording.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { MemoryStore } from '../../src/store/memory.js';
import type { Pki } from '../../src/apiserver/pki.js';
import { JwtError, authenticateToken, issueServiceAccountToken, serviceAccountKey, signJwt, signServiceAccountToken, verifyJwt } from '../../src/apiserver/auth/tokens.js';
import { requestAttributes, type Attributes, type User } from '../../src/apiserver/auth/attributes.js';
import { authorize, type PolicySource } from '../../src/apiserver/auth/rbac.js';
import type { Binding, Role } from '../../src/apiserver/auth/rules.js';
import { forbiddenStatus } from '../../src/apiserver/auth/forbidden.js';
import { reviewAttributes } from '../../src/apiserver/auth/reviews.js';
import { ProtobufError, reviewFromProtobuf } from '../../src/apiserver/auth/protobuf.js';

function keys(): Pick<Pki, 'saKey' | 'saPub'> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { saKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, saPub: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}
const pki = keys() as Pki;
const store = new MemoryStore();
after(() => store.close());

const sa = (ns: string, name: string, uid: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns, uid } });

test('jwt: ES256 signs and verifies; a changed payload, another key, or alg "none" is refused', () => {
  const token = signJwt({ sub: 'x', n: 1 }, pki.saKey, 'kid1');
  const [head, body, sig] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(head, 'base64url').toString()), { alg: 'ES256', kid: 'kid1', typ: 'JWT' });
  assert.equal(Buffer.from(sig, 'base64url').length, 64, 'r||s, not DER');
  assert.deepEqual(verifyJwt(token, pki.saPub), { sub: 'x', n: 1 });
  const forged = `${head}.${Buffer.from(JSON.stringify({ sub: 'admin', n: 1 })).toString('base64url')}.${sig}`;
  assert.throws(() => verifyJwt(forged, pki.saPub), JwtError);
  assert.throws(() => verifyJwt(token, keys().saPub), /signature does not verify/);
  const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${body}.`;
  assert.throws(() => verifyJwt(none, pki.saPub), /algorithm none is not accepted/);
  assert.throws(() => verifyJwt('a.b', pki.saPub), JwtError);
});

test('tokens: the claims kube-apiserver puts; valid while the ServiceAccount exists with the same uid and not expired', async () => {
  await store.put(serviceAccountKey('flatnet-system', 'flatnet'), sa('flatnet-system', 'flatnet', 'uid-1'));
  const token = await issueServiceAccountToken(store, pki, 'flatnet-system', 'flatnet', 3600);
  const claims = verifyJwt(token, pki.saPub) as any;
  assert.equal(claims.sub, 'system:serviceaccount:flatnet-system:flatnet');
  assert.equal(claims.iss, 'https://kubernetes.default.svc.cluster.local');
  assert.deepEqual(claims.aud, ['https://kubernetes.default.svc.cluster.local']);
  assert.equal(claims.exp - claims.iat, 3600);
  assert.equal(claims.nbf, claims.iat);
  assert.deepEqual(claims['kubernetes.io'], { namespace: 'flatnet-system', serviceaccount: { name: 'flatnet', uid: 'uid-1' } });
  assert.deepEqual(await authenticateToken(store, pki, token), {
    name: 'system:serviceaccount:flatnet-system:flatnet', uid: 'uid-1',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:flatnet-system', 'system:authenticated'],
  });
  const err = async (t: string, now?: number) => ((await authenticateToken(store, pki, t, now)) as { error?: string }).error;
  assert.match(await err(token, Date.now() + 3601_000) ?? '', /expired/);
  const stored = JSON.parse((await store.get(serviceAccountKey('flatnet-system', 'flatnet')))!.value);
  const otherAudience = signServiceAccountToken(pki, stored, 3600, { audiences: ['vault'] }).token;
  assert.match(await err(otherAudience) ?? '', /audiences/);
  await store.put(serviceAccountKey('flatnet-system', 'flatnet'), sa('flatnet-system', 'flatnet', 'uid-2'));
  assert.match(await err(token) ?? '', /uid/, 'a recreated ServiceAccount does not honour the old one\'s tokens');
  await store.delete(serviceAccountKey('flatnet-system', 'flatnet'));
  assert.match(await err(token) ?? '', /not found/);
  await assert.rejects(issueServiceAccountToken(store, pki, 'flatnet-system', 'flatnet'), /serviceaccounts "flatnet" not found/);
});

test('attributes: verb, group, resource, subresource, namespace and name from method and path', () => {
  const a = (m: string, u: string) => { const x = requestAttributes(m, u); return x.resourceRequest ? [x.verb, x.apiGroup, x.resource, x.subresource, x.namespace, x.name] : [x.verb, x.path]; };
  assert.deepEqual(a('GET', '/api/v1/pods'), ['list', '', 'pods', '', '', '']);
  assert.deepEqual(a('GET', '/api/v1/namespaces/default/pods?watch=1'), ['watch', '', 'pods', '', 'default', '']);
  assert.deepEqual(a('GET', '/api/v1/watch/namespaces/default/pods'), ['watch', '', 'pods', '', 'default', '']);
  assert.deepEqual(a('DELETE', '/api/v1/namespaces/default/pods/web-1'), ['delete', '', 'pods', '', 'default', 'web-1']);
  assert.deepEqual(a('DELETE', '/api/v1/namespaces/default/pods'), ['deletecollection', '', 'pods', '', 'default', '']);
  assert.deepEqual(a('PATCH', '/api/v1/nodes/n1/status'), ['patch', '', 'nodes', 'status', '', 'n1']);
  assert.deepEqual(a('PUT', '/api/v1/namespaces/demo/finalize'), ['update', '', 'namespaces', 'finalize', 'demo', 'demo']);
  assert.deepEqual(a('GET', '/api/v1/namespaces/demo'), ['get', '', 'namespaces', '', 'demo', 'demo']);
  assert.deepEqual(a('POST', '/apis/apps/v1/namespaces/demo/deployments'), ['create', 'apps', 'deployments', '', 'demo', '']);
  assert.deepEqual(a('POST', '/api/v1/namespaces/s/serviceaccounts/x/token'), ['create', '', 'serviceaccounts', 'token', 's', 'x']);
  for (const p of ['/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/version', '/openapi/v3']) assert.deepEqual(a('GET', p), ['get', p]);
});

/** A PolicySource over plain lists. */
function policy(o: { clusterRoles?: Role[]; roles?: Role[]; crbs?: Binding[]; rbs?: Binding[] }): PolicySource {
  return {
    clusterRole: (n) => o.clusterRoles?.find((r) => r.metadata.name === n),
    role: (ns, n) => o.roles?.find((r) => r.metadata.namespace === ns && r.metadata.name === n),
    clusterRoleBindings: () => o.crbs ?? [],
    roleBindings: (ns) => (o.rbs ?? []).filter((b) => b.metadata.namespace === ns),
  };
}
const saUser: User = { name: 'system:serviceaccount:flatnet-system:flatnet', groups: ['system:serviceaccounts', 'system:serviceaccounts:flatnet-system', 'system:authenticated'] };
const crb = (name: string, role: string, subjects: Binding['subjects']): Binding => ({ metadata: { name }, roleRef: { kind: 'ClusterRole', name: role }, subjects });
const can = (p: PolicySource, u: User, method: string, url: string) => authorize(p, u, requestAttributes(method, url)).allowed;

test('rbac: the agent ClusterRole: read verbs, nodes/status patch only; subjects by ServiceAccount, Group, User', () => {
  const agent: Role = { metadata: { name: 'flatnet' }, rules: [
    { apiGroups: [''], resources: ['nodes', 'pods'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
  ] };
  const p = policy({ clusterRoles: [agent], crbs: [crb('flatnet', 'flatnet', [{ kind: 'ServiceAccount', name: 'flatnet', namespace: 'flatnet-system' }])] });
  assert.equal(can(p, saUser, 'GET', '/api/v1/pods'), true);
  assert.equal(can(p, saUser, 'GET', '/api/v1/namespaces/default/pods?watch=true'), true);
  assert.equal(can(p, saUser, 'PATCH', '/api/v1/nodes/n1/status'), true);
  assert.equal(can(p, saUser, 'PATCH', '/api/v1/nodes/n1'), false);
  assert.equal(can(p, saUser, 'DELETE', '/api/v1/namespaces/default/pods/x'), false);
  assert.equal(can(p, saUser, 'GET', '/api/v1/secrets'), false);
  assert.equal(can(p, saUser, 'GET', '/apis'), true, 'discovery: bootstrap system:discovery');
  assert.equal(can(p, saUser, 'GET', '/metrics'), false);
  const other: User = { name: 'system:serviceaccount:default:flatnet', groups: ['system:authenticated'] };
  assert.equal(can(p, other, 'GET', '/api/v1/pods'), false, 'same name, other namespace');
  const byGroup = policy({ clusterRoles: [agent], crbs: [crb('g', 'flatnet', [{ kind: 'Group', name: 'system:serviceaccounts:flatnet-system' }])] });
  assert.equal(can(byGroup, saUser, 'GET', '/api/v1/nodes/n1'), true);
  const byUser = policy({ clusterRoles: [agent], crbs: [crb('u', 'flatnet', [{ kind: 'User', name: 'alice' }])] });
  assert.equal(can(byUser, { name: 'alice', groups: [] }, 'GET', '/api/v1/nodes'), true);
  assert.equal(can(byUser, saUser, 'GET', '/api/v1/nodes'), false);
  assert.equal(can(policy({}), { name: 'root', groups: ['system:masters'] }, 'DELETE', '/api/v1/namespaces/x/secrets/y'), true);
});

test('rbac: wildcards, */status, resourceNames, and a RoleBinding of a ClusterRole grants only in its namespace', () => {
  const alice: User = { name: 'alice', groups: ['system:authenticated'] };
  const roles: Role[] = [
    { metadata: { name: 'all-apps' }, rules: [{ apiGroups: ['apps'], resources: ['*'], verbs: ['*'] }] },
    { metadata: { name: 'statuses' }, rules: [{ apiGroups: ['*'], resources: ['*/status'], verbs: ['update'] }] },
    { metadata: { name: 'one-node' }, rules: [{ apiGroups: [''], resources: ['nodes'], resourceNames: ['n1'], verbs: ['get', 'list'] }] },
    { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] },
  ];
  const p = policy({ clusterRoles: roles,
    crbs: ['all-apps', 'statuses', 'one-node'].map((r) => crb(r, r, [{ kind: 'User', name: 'alice' }])),
    rbs: [{ metadata: { name: 'read', namespace: 'demo' }, roleRef: { kind: 'ClusterRole', name: 'pod-reader' }, subjects: [{ kind: 'User', name: 'alice' }] }] });
  assert.equal(can(p, alice, 'DELETE', '/apis/apps/v1/namespaces/x/deployments/d'), true);
  assert.equal(can(p, alice, 'DELETE', '/api/v1/namespaces/x/pods/d'), false, 'apps/* is not core');
  assert.equal(can(p, alice, 'PUT', '/apis/apps/v1/namespaces/x/deployments/d/status'), true);
  assert.equal(can(p, alice, 'PUT', '/api/v1/nodes/n9/status'), true, '*/status');
  assert.equal(can(p, alice, 'PUT', '/api/v1/nodes/n9'), false);
  assert.equal(can(p, alice, 'GET', '/api/v1/nodes/n1'), true);
  assert.equal(can(p, alice, 'GET', '/api/v1/nodes/n2'), false);
  assert.equal(can(p, alice, 'GET', '/api/v1/nodes'), false, 'a list names no object: resourceNames never allow it');
  assert.equal(can(p, alice, 'GET', '/api/v1/namespaces/demo/pods'), true);
  assert.equal(can(p, alice, 'GET', '/api/v1/namespaces/other/pods'), false);
  assert.equal(can(p, alice, 'GET', '/api/v1/pods'), false, 'a RoleBinding does not grant across namespaces');
  const withRole = policy({ roles: [{ metadata: { name: 'r', namespace: 'demo' }, rules: roles[3].rules }],
    rbs: [{ metadata: { name: 'b', namespace: 'demo' }, roleRef: { kind: 'Role', name: 'r' }, subjects: [{ kind: 'ServiceAccount', name: 'flatnet' }] }] });
  const demoSa: User = { name: 'system:serviceaccount:demo:flatnet', groups: [] };
  assert.equal(can(withRole, demoSa, 'GET', '/api/v1/namespaces/demo/pods/x'), true, 'a ServiceAccount subject without a namespace is in the binding\'s');
});

test('forbidden: kube-apiserver\'s message shape, a missing role as the reason', () => {
  const at = (m: string, u: string): Attributes => requestAttributes(m, u);
  const s = forbiddenStatus(saUser, at('DELETE', '/api/v1/namespaces/default/pods'));
  assert.deepEqual(s, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Forbidden', code: 403,
    message: 'pods is forbidden: User "system:serviceaccount:flatnet-system:flatnet" cannot deletecollection resource "pods" in API group "" in the namespace "default"',
    details: { group: '', kind: 'pods' } });
  assert.equal(forbiddenStatus(saUser, at('PATCH', '/api/v1/nodes/n1')).message,
    'nodes "n1" is forbidden: User "system:serviceaccount:flatnet-system:flatnet" cannot patch resource "nodes" in API group "" at the cluster scope');
  assert.equal(forbiddenStatus(saUser, at('GET', '/apis/apps/v1/deployments')).message,
    'deployments.apps is forbidden: User "system:serviceaccount:flatnet-system:flatnet" cannot list resource "deployments" in API group "apps" at the cluster scope');
  assert.equal(forbiddenStatus(saUser, at('GET', '/metrics')).message, 'forbidden: User "system:serviceaccount:flatnet-system:flatnet" cannot get path "/metrics"');
  const dangling = policy({ crbs: [crb('x', 'gone', [{ kind: 'User', name: 'bob' }])] });
  const bob: User = { name: 'bob', groups: [] };
  const d = authorize(dangling, bob, at('GET', '/api/v1/pods'));
  assert.deepEqual(d, { allowed: false, reason: 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found' });
  assert.match(forbiddenStatus(bob, at('GET', '/api/v1/pods'), d.reason).message, /at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found$/);
});

test('access review attributes: resource or non-resource; neither is an error', () => {
  assert.deepEqual(reviewAttributes({ resourceAttributes: { verb: 'patch', resource: 'nodes', subresource: 'status', name: 'n1' } }),
    { resourceRequest: true, verb: 'patch', apiGroup: '', apiVersion: '', resource: 'nodes', subresource: 'status', namespace: '', name: 'n1', path: '' });
  assert.deepEqual(reviewAttributes({ nonResourceAttributes: { verb: 'get', path: '/api' } }), { resourceRequest: false, verb: 'get', path: '/api' });
  assert.equal(typeof reviewAttributes({}), 'string');
});

/** A protobuf field: key, then a varint or a length-delimited value (the encoder the decoder is tested with). */
function pbField(n: number, v: number | string | Buffer): Buffer {
  const varint = (x: number) => { const out: number[] = []; while (x >= 0x80) { out.push((x % 0x80) | 0x80); x = Math.floor(x / 0x80); } out.push(x); return Buffer.from(out); };
  if (typeof v === 'number') return Buffer.concat([varint(n * 8), varint(v)]);
  const b = Buffer.from(v);
  return Buffer.concat([varint(n * 8 + 2), varint(b.length), b]);
}
const pbEnvelope = (apiVersion: string, kind: string, raw: Buffer) =>
  Buffer.concat([Buffer.from('k8s\0', 'latin1'), pbField(1, Buffer.concat([pbField(1, apiVersion), pbField(2, kind)])), pbField(2, raw)]);

test('protobuf: kubectl\'s TokenRequest and SelfSubjectAccessReview bodies read as their JSON', () => {
  const token = pbEnvelope('authentication.k8s.io/v1', 'TokenRequest', Buffer.concat([
    pbField(1, Buffer.alloc(0)), pbField(2, Buffer.concat([pbField(1, 'aud-a'), pbField(1, 'aud-b'), pbField(4, 86400)])), pbField(3, Buffer.alloc(0))]));
  assert.deepEqual(reviewFromProtobuf(token), { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['aud-a', 'aud-b'], expirationSeconds: 86400 } });
  const attrs = Buffer.concat([pbField(1, 'default'), pbField(2, 'patch'), pbField(3, ''), pbField(4, ''), pbField(5, 'nodes'), pbField(6, 'status'), pbField(7, 'n1')]);
  const ssar = pbEnvelope('authorization.k8s.io/v1', 'SelfSubjectAccessReview', Buffer.concat([pbField(1, Buffer.alloc(0)), pbField(2, pbField(1, attrs))]));
  assert.deepEqual(reviewFromProtobuf(ssar).spec, { resourceAttributes: { namespace: 'default', verb: 'patch', group: '', version: '', resource: 'nodes', subresource: 'status', name: 'n1' } });
  const nonResource = pbEnvelope('authorization.k8s.io/v1', 'SelfSubjectAccessReview', pbField(2, pbField(2, Buffer.concat([pbField(1, '/api'), pbField(2, 'get')]))));
  assert.deepEqual(reviewFromProtobuf(nonResource).spec, { nonResourceAttributes: { path: '/api', verb: 'get' } });
  assert.throws(() => reviewFromProtobuf(Buffer.from('{"kind":"TokenRequest"}')), ProtobufError);
  assert.throws(() => reviewFromProtobuf(Buffer.concat([Buffer.from('k8s\0', 'latin1'), Buffer.from([0x12, 0x50, 0x01])])), /truncated/);
});
