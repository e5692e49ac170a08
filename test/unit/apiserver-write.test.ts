// The lab API's write side over HTTP against the memory store: PATCH of nodes and nodes/status (merge
// and strategic merge, resourceVersion preconditions), create/update/patch/delete of flatnet's kinds
// through `flatnet apply`'s validation (422 with causes) and allocation, dry runs, and the extra kinds.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from '../../src/store/memory.js';
import { createHandler } from '../../src/apiserver/handler.js';
import { objectKey } from '../../src/api/keys.js';
import type { Node } from '../../src/api/types.js';

const store = new MemoryStore();
const server = createServer(createHandler({ store, serverAddress: '127.0.0.1:0' }));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
});

const MERGE = 'application/merge-patch+json';
const SMP = 'application/strategic-merge-patch+json';
const JSONPATCH = 'application/json-patch+json';

function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, path, method, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(text) } }, (res) => {
      let out = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { out += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out ? JSON.parse(out) : undefined }));
    });
    req.on('error', reject);
    req.end(text);
  });
}
const patch = (path: string, body: unknown, type = SMP) => call('PATCH', path, body, type);

const node: Node = {
  apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1', uid: 'u1', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: {},
  status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], conditions: [{ type: 'Ready', status: 'True', reason: 'up' }] },
};
await store.put(objectKey('Node', 'node-1'), JSON.stringify(node));
await store.put(objectKey('Namespace', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' }, status: { phase: 'Active' } }));
const stored = async (key: string) => JSON.parse((await store.get(key))!.value);

test('PATCH nodes/status: strategic merge adds a condition by type and keeps the others; spec is untouched', async () => {
  const cond = { type: 'NetworkUnavailable', status: 'False', reason: 'FlatnetIsUp', message: 'routes are up' };
  const r = await patch('/api/v1/nodes/node-1/status', { status: { conditions: [cond] }, spec: { podCIDR: '10.9.0.0/24' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.status.conditions.map((c: any) => c.type), ['Ready', 'NetworkUnavailable']);
  assert.match(r.body.metadata.resourceVersion, /^\d+$/);
  const n = await stored(objectKey('Node', 'node-1'));
  assert.equal(n.spec.podCIDR, undefined, 'nodes/status changes only .status');
  assert.equal(n.metadata.resourceVersion, undefined, 'resourceVersion is never stored');
  // The same condition again, changed: merged into the existing entry, not appended.
  const again = await patch('/api/v1/nodes/node-1/status', { status: { conditions: [{ ...cond, status: 'True' }] } });
  assert.deepEqual(again.body.status.conditions.map((c: any) => [c.type, c.status]), [['Ready', 'True'], ['NetworkUnavailable', 'True']]);
});

test('PATCH nodes: spec.podCIDR(s) change, .status in the patch is ignored, merge patch replaces lists', async () => {
  const r = await patch('/api/v1/nodes/node-1', { spec: { podCIDR: '10.9.1.0/24', podCIDRs: ['10.9.1.0/24'] }, status: { conditions: [] } }, MERGE);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const n = await stored(objectKey('Node', 'node-1'));
  assert.deepEqual([n.spec.podCIDR, n.spec.podCIDRs], ['10.9.1.0/24', ['10.9.1.0/24']]);
  assert.ok(n.status.conditions.length >= 1, 'status is not changed through the node itself');
  assert.equal(n.metadata.uid, 'u1');
  const labelled = await patch('/api/v1/nodes/node-1', { metadata: { labels: { zone: 'a' } } }, MERGE);
  assert.equal(labelled.body.metadata.labels.zone, 'a');
});

test('PATCH with a resourceVersion: honoured as a precondition, 409 Conflict once it moved', async () => {
  const kv = await store.get(objectKey('Node', 'node-1'));
  const ok = await patch('/api/v1/nodes/node-1', { metadata: { resourceVersion: String(kv!.modRevision), labels: { rv: 'ok' } } }, MERGE);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const stale = await patch('/api/v1/nodes/node-1/status', { metadata: { resourceVersion: String(kv!.modRevision) }, status: { phase: 'x' } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.reason, 'Conflict');
  assert.equal(stale.body.message, 'Operation cannot be fulfilled on nodes "node-1": the object has been modified; please apply your changes to the latest version and try again');
});

test('PATCH: a JSON patch, a missing object (404) and an unknown patch type (415)', async () => {
  const r = await patch('/api/v1/nodes/node-1', [{ op: 'add', path: '/metadata/labels/tier', value: 'edge' }, { op: 'test', path: '/metadata/name', value: 'node-1' }], JSONPATCH);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.metadata.labels.tier, 'edge');
  assert.equal((await patch('/api/v1/nodes/nope', { metadata: {} }, MERGE)).status, 404);
  assert.equal((await patch('/api/v1/nodes/node-1', {}, 'application/yaml')).status, 415);
});

test('concurrent strategic patches of nodes/status: none is lost (compare-and-set, retried)', async () => {
  const types = Array.from({ length: 6 }, (_, i) => `Extra${i}`);
  const replies = await Promise.all(types.map((type) => patch('/api/v1/nodes/node-1/status', { status: { conditions: [{ type, status: 'True' }] } })));
  assert.deepEqual(replies.map((r) => r.status), types.map(() => 200));
  const n = await stored(objectKey('Node', 'node-1'));
  for (const t of types) assert.ok(n.status.conditions.some((c: any) => c.type === t), t);
});

const pod = (name: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'x' }], ...extra } });

test('POST: created with uid, creationTimestamp and resourceVersion; the same name again is 409 AlreadyExists; generateName', async () => {
  const r = await call('POST', '/api/v1/namespaces/default/pods', pod('web-1'));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.match(r.body.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(r.body.metadata.resourceVersion, /^\d+$/);
  assert.ok(r.body.metadata.creationTimestamp);
  assert.equal(r.body.status.phase, 'Pending');
  const again = await call('POST', '/api/v1/namespaces/default/pods', pod('web-1'));
  assert.deepEqual([again.status, again.body.reason, again.body.message], [409, 'AlreadyExists', 'pods "web-1" already exists']);
  const gen = await call('POST', '/api/v1/namespaces/default/pods', { ...pod(''), metadata: { generateName: 'gen-' } });
  assert.equal(gen.status, 201, JSON.stringify(gen.body));
  assert.match(gen.body.metadata.name, /^gen-[a-z0-9]{5}$/);
  const missingNs = await call('POST', '/api/v1/namespaces/nowhere/pods', pod('x'));
  assert.deepEqual([missingNs.status, missingNs.body.message], [404, 'namespaces "nowhere" not found']);
});

test('POST: flatnet apply\'s validation, as 422 Invalid with the field in details.causes', async () => {
  const r = await call('POST', '/api/v1/namespaces/default/pods', { ...pod('bad'), spec: { containers: [{ name: 'c', ports: [{ containerPort: 70000 }] }] } });
  assert.equal(r.status, 422);
  assert.equal(r.body.reason, 'Invalid');
  assert.equal(r.body.details.causes[0].field, 'spec.containers[0].ports[0].containerPort');
  assert.match(r.body.message, /^Pod "bad" is invalid: spec\.containers\[0\]\.ports\[0\]\.containerPort: 70000 is not a port/);
  const unknown = await call('POST', '/api/v1/namespaces/default/pods', { ...pod('bad'), spec: { containers: [{ name: 'c' }], hostPID: true } });
  assert.equal(unknown.body.details.causes[0].field, 'spec.hostPID');
  assert.equal(await store.get(objectKey('Pod', 'bad', 'default')), undefined);
});

test('?dryRun=All: answered as if written, nothing stored', async () => {
  const r = await call('POST', '/api/v1/namespaces/default/pods?dryRun=All&fieldManager=kubectl&fieldValidation=Strict', pod('dry'));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.metadata.name, 'dry');
  assert.equal(await store.get(objectKey('Pod', 'dry', 'default')), undefined);
  const p = await patch('/api/v1/namespaces/default/pods/web-1?dryRun=All', { metadata: { labels: { dry: 'yes' } } });
  assert.equal(p.body.metadata.labels.dry, 'yes');
  assert.equal((await stored(objectKey('Pod', 'web-1', 'default'))).metadata.labels.dry, undefined);
});

test('PUT: resourceVersion precondition (409 Conflict when it moved); a pod\'s spec stays immutable (422)', async () => {
  const got = (await call('GET', '/api/v1/namespaces/default/pods/web-1')).body;
  const ok = await call('PUT', '/api/v1/namespaces/default/pods/web-1', { ...got, metadata: { ...got.metadata, labels: { app: 'web', v: '2' } } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.metadata.labels.v, '2');
  const stale = await call('PUT', '/api/v1/namespaces/default/pods/web-1', got);
  assert.deepEqual([stale.status, stale.body.reason], [409, 'Conflict']);
  const current = (await call('GET', '/api/v1/namespaces/default/pods/web-1')).body;
  const changed = await call('PUT', '/api/v1/namespaces/default/pods/web-1', { ...current, spec: { ...current.spec, containers: [{ name: 'c', image: 'y' }] } });
  assert.equal(changed.status, 422);
  assert.equal(changed.body.details.causes[0].field, 'spec.containers[0].image');
});

test('strategic merge of a Deployment: containers by name, env by name, ports by containerPort', async () => {
  const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 1, selector: { matchLabels: { app: 'd' } },
    template: { metadata: { labels: { app: 'd' } }, spec: { containers: [{ name: 'a', image: 'i', ports: [{ containerPort: 80 }] }, { name: 'b', image: 'j' }] } } } };
  assert.equal((await call('POST', '/apis/apps/v1/namespaces/default/deployments', dep)).status, 201);
  const r = await patch('/apis/apps/v1/namespaces/default/deployments/d', { spec: { template: { spec: { containers: [{ name: 'b', image: 'k', ports: [{ containerPort: 81 }] }] } } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.spec.template.spec.containers.map((c: any) => [c.name, c.image]), [['a', 'i'], ['b', 'k']]);
  const del = await patch('/apis/apps/v1/namespaces/default/deployments/d', { spec: { template: { spec: { containers: [{ name: 'a', $patch: 'delete' }] } } } });
  assert.deepEqual(del.body.spec.template.spec.containers.map((c: any) => c.name), ['b']);
});

test('Services: ClusterIP and NodePort allocated as flatnet apply does; ports merge by port and protocol', async () => {
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] } };
  const r = await call('POST', '/api/v1/namespaces/default/services', svc);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.match(r.body.spec.clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
  assert.ok(r.body.spec.ports[0].nodePort >= 30000);
  assert.ok(await store.get(`/flatnet/allocations/clusterips/${r.body.spec.clusterIP}`));
  const p = await patch('/api/v1/namespaces/default/services/s', { spec: { ports: [{ port: 80, name: 'http', targetPort: 9090 }, { port: 53, name: 'dns', protocol: 'UDP', targetPort: 53 }] } });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.deepEqual(p.body.spec.ports.map((x: any) => [x.port, x.targetPort, x.nodePort === r.body.spec.ports[0].nodePort]), [[80, 9090, true], [53, 53, false]]);
  const taken = await call('POST', '/api/v1/namespaces/default/services', { ...svc, metadata: { name: 's2' }, spec: { ...svc.spec, clusterIP: r.body.spec.clusterIP } });
  assert.deepEqual([taken.status, taken.body.details.causes[0].field], [422, 'spec.clusterIP']);
  assert.equal((await call('DELETE', '/api/v1/namespaces/default/services/s')).status, 200);
  assert.equal(await store.get(`/flatnet/allocations/clusterips/${r.body.spec.clusterIP}`), undefined, 'its ClusterIP is freed');
});

test('DELETE: a pod on a node is marked terminating; gracePeriodSeconds=0 removes it at once', async () => {
  assert.equal((await call('POST', '/api/v1/namespaces/default/pods', pod('bound', { nodeName: 'node-1' }))).status, 201);
  const r = await call('DELETE', '/api/v1/namespaces/default/pods/bound', { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 20 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.metadata.deletionGracePeriodSeconds, 20);
  assert.ok((await stored(objectKey('Pod', 'bound', 'default'))).metadata.deletionTimestamp);
  assert.equal((await call('DELETE', '/api/v1/namespaces/default/pods/bound?gracePeriodSeconds=0')).status, 200);
  assert.equal(await store.get(objectKey('Pod', 'bound', 'default')), undefined);
  assert.equal((await call('DELETE', '/api/v1/namespaces/default/pods/bound')).status, 404);
  assert.equal((await call('DELETE', '/api/v1/namespaces/default')).status, 403, 'default may not be deleted');
});

test('extra kinds stored generically at /registry/<plural>/...; a namespace takes them with it', async () => {
  assert.equal((await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sys' } })).status, 201);
  const sa = await call('POST', '/api/v1/namespaces/sys/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'flatnet' } });
  assert.equal(sa.status, 201, JSON.stringify(sa.body));
  assert.ok(await store.get('/registry/serviceaccounts/sys/flatnet'));
  const role = await call('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'flatnet' }, rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }] });
  assert.equal(role.status, 201);
  assert.deepEqual((await stored('/registry/clusterroles/flatnet')).rules[0].verbs, ['get']);
  const bad = await call('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'Bad_Name' } });
  assert.deepEqual([bad.status, bad.body.details.causes[0].field], [422, 'metadata.name']);
  assert.equal((await call('DELETE', '/api/v1/namespaces/sys')).status, 200);
  assert.equal(await store.get('/registry/serviceaccounts/sys/flatnet'), undefined);
  assert.equal(await store.get(objectKey('Namespace', 'sys')), undefined);
});

test('a JSON patch may test the resourceVersion: a stale one fails the patch', async () => {
  const kv = await store.get(objectKey('Node', 'node-1'));
  const ok = await patch('/api/v1/nodes/node-1', [{ op: 'test', path: '/metadata/resourceVersion', value: String(kv!.modRevision) }, { op: 'add', path: '/metadata/labels/t', value: '1' }], JSONPATCH);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const stale = await patch('/api/v1/nodes/node-1', [{ op: 'test', path: '/metadata/resourceVersion', value: String(kv!.modRevision) }], JSONPATCH);
  assert.notEqual(stale.status, 200);
});

test('a body without apiVersion and kind takes the URL\'s; a different kind is 400', async () => {
  const r = await call('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'bare' }, spec: { containers: [{ name: 'c' }] } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual([r.body.apiVersion, r.body.kind], ['v1', 'Pod']);
  assert.equal((await call('POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' } })).status, 400);
});

test('deployments/scale: a Scale view; a patch of its replicas changes the Deployment\'s', async () => {
  const scale = await call('GET', '/apis/apps/v1/namespaces/default/deployments/d/scale');
  assert.deepEqual([scale.status, scale.body.kind, scale.body.spec.replicas, scale.body.status.selector], [200, 'Scale', 1, 'app=d']);
  const r = await patch('/apis/apps/v1/namespaces/default/deployments/d/scale', { spec: { replicas: 4 } }, MERGE);
  assert.deepEqual([r.status, r.body.kind, r.body.spec.replicas], [200, 'Scale', 4]);
  assert.equal((await stored('/registry/deployments/default/d')).spec.replicas, 4);
});
