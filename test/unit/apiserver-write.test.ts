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
