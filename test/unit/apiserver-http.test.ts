// The lab API over HTTP against the memory store: discovery, get, list with resourceVersion and
// selectors, Status errors, and watch streams (initial ADDED, live events, replay from a revision,
// bookmarks, and 410 Gone once the revision is compacted).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from '../../src/store/memory.js';
import { createHandler } from '../../src/apiserver/handler.js';
import { objectKey } from '../../src/api/keys.js';
import type { Node, Pod } from '../../src/api/types.js';
import { until } from '../helpers/until.js';

const store = new MemoryStore();
const server = createServer(createHandler({ store, serverAddress: '127.0.0.1:0', watch: { bookmarkIntervalMs: 50 } }));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
const open = new Set<IncomingMessage>();
after(async () => {
  for (const r of open) r.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
});

const node = (name: string): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { zone: name === 'node-1' ? 'a' : 'b' } }, spec: {} });
const pod = (name: string, nodeName: string, labels: Record<string, string> = {}): Pod =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels }, spec: { nodeName, containers: [{ name: 'c' }] } });
const putPod = (p: Pod) => store.put(objectKey('Pod', p.metadata.name, 'default'), JSON.stringify(p));

function get(path: string, accept = 'application/json'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers: { accept } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on('error', reject).end();
  });
}

/** A watch stream: the events so far, and a way to wait for the nth. */
async function watch(path: string) {
  const events: any[] = [];
  let ended = false;
  const res = await new Promise<IncomingMessage>((resolve, reject) => request({ host: '127.0.0.1', port, path }, resolve).on('error', reject).end());
  open.add(res);
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => { buf += d; const lines = buf.split('\n'); buf = lines.pop()!; for (const l of lines) if (l) events.push(JSON.parse(l)); });
  res.on('end', () => { ended = true; });
  return {
    events, res, ended: () => ended,
    nth: (n: number, what = `event ${n}`) => until(what, () => (events.length > n ? events[n] : undefined), 5000, 10),
    stop: () => { res.destroy(); open.delete(res); },
  };
}

await store.put(objectKey('Node', 'node-1'), JSON.stringify(node('node-1')));
await store.put(objectKey('Node', 'node-2'), JSON.stringify(node('node-2')));
await putPod(pod('web-1', 'node-1', { app: 'web' }));
await putPod(pod('db-1', 'node-2', { app: 'db' }));

test('discovery: /version, /api, /apis and a group version', async () => {
  assert.equal((await get('/version')).body.major, '1');
  assert.deepEqual((await get('/api')).body.versions, ['v1']);
  const groups = (await get('/apis')).body.groups.map((g: any) => g.preferredVersion.groupVersion);
  assert.deepEqual(groups.sort(), ['apps/v1', 'authorization.k8s.io/v1', 'discovery.k8s.io/v1', 'networking.k8s.io/v1', 'rbac.authorization.k8s.io/v1']);
  assert.equal((await get('/apis/networking.k8s.io/v1')).body.resources[0].name, 'networkpolicies');
  assert.equal((await get('/apis/nothing.example/v1')).status, 404);
});

test('get: the object with its modRevision as resourceVersion; a missing one is a NotFound Status', async () => {
  const kv = await store.get(objectKey('Pod', 'web-1', 'default'));
  const { status, body } = await get('/api/v1/namespaces/default/pods/web-1');
  assert.equal(status, 200);
  assert.equal(body.metadata.resourceVersion, String(kv!.modRevision));
  const missing = await get('/api/v1/namespaces/default/pods/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'pods "nope" not found',
    reason: 'NotFound', details: { name: 'nope', group: '', kind: 'pods' }, code: 404 });
  assert.equal((await get('/apis/apps/v1/namespaces/default/deployments/x')).body.message, 'deployments.apps "x" not found');
});

test('list: the store revision, all namespaces or one, label and field selectors; a bad selector is 400', async () => {
  const { body } = await get('/api/v1/pods');
  assert.equal(body.kind, 'PodList');
  const listing = await store.list('/registry/pods/');
  assert.equal(body.metadata.resourceVersion, String(listing.revision));
  assert.deepEqual(body.items.map((p: Pod) => p.metadata.name), ['db-1', 'web-1']);
  assert.equal((await get('/api/v1/namespaces/other/pods')).body.items.length, 0);
  const names = async (q: string) => (await get(`/api/v1/pods?${q}`)).body.items.map((p: Pod) => p.metadata.name);
  assert.deepEqual(await names('labelSelector=app%3Dweb'), ['web-1']);
  assert.deepEqual(await names('labelSelector=app%20in%20(web,db)'), ['db-1', 'web-1']);
  assert.deepEqual(await names('fieldSelector=spec.nodeName%3Dnode-2'), ['db-1']);
  assert.deepEqual(await names('fieldSelector=metadata.name%3Dweb-1,metadata.namespace%3Ddefault'), ['web-1']);
  const bad = await get('/api/v1/nodes?fieldSelector=spec.nodeName%3Dx');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.reason, 'BadRequest');
  assert.deepEqual((await get('/api/v1/nodes?labelSelector=zone%3Db')).body.items.map((n: Node) => n.metadata.name), ['node-2']);
});

test('list as a Table when kubectl asks for one', async () => {
  const { body } = await get('/api/v1/nodes', 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
  assert.equal(body.kind, 'Table');
  assert.deepEqual(body.rows.map((r: any) => r.cells[0]), ['node-1', 'node-2']);
  assert.equal(body.rows[0].object.kind, 'PartialObjectMetadata');
});

test('watch: current objects as ADDED, then live MODIFIED and DELETED; selectors filter', async () => {
  const w = await watch('/api/v1/namespaces/default/pods?watch=1');
  const sel = await watch('/api/v1/pods?watch=true&labelSelector=app%3Dweb');
  assert.deepEqual([(await w.nth(0)).type, (await w.nth(1)).type], ['ADDED', 'ADDED']);
  assert.equal((await sel.nth(0)).object.metadata.name, 'web-1');
  const rev = await putPod(pod('web-1', 'node-1', { app: 'web', v: '2' }));
  const mod = await w.nth(2);
  assert.deepEqual([mod.type, mod.object.metadata.name, mod.object.metadata.resourceVersion], ['MODIFIED', 'web-1', String(rev)]);
  assert.equal((await sel.nth(1)).type, 'MODIFIED');
  await putPod(pod('web-1', 'node-1', { app: 'other' }));
  assert.equal((await sel.nth(2)).type, 'DELETED', 'a pod that stops matching leaves the filtered watch');
  await store.delete(objectKey('Pod', 'db-1', 'default'));
  assert.equal((await w.nth(4, 'the delete')).type, 'DELETED');
  assert.equal(sel.events.length, 3, 'db-1 never matched app=web');
  w.stop(); sel.stop();
  await putPod(pod('db-1', 'node-2', { app: 'db' }));
  await putPod(pod('web-1', 'node-1', { app: 'web' }));
});

test('watch from a resourceVersion replays what came after it, with bookmarks when asked', async () => {
  const start = (await store.list('/registry/pods/')).revision;
  await putPod(pod('new-1', 'node-1'));
  await store.delete(objectKey('Pod', 'new-1', 'default'));
  const w = await watch(`/api/v1/pods?watch=1&resourceVersion=${start}&allowWatchBookmarks=true`);
  assert.deepEqual([(await w.nth(0)).type, (await w.nth(1)).type], ['ADDED', 'DELETED']);
  const bookmark = await until('a bookmark', () => w.events.find((e) => e.type === 'BOOKMARK'), 5000, 10);
  assert.deepEqual(bookmark.object, { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(start + 2) } });
  w.stop();
});

test('watch from a compacted resourceVersion: an ERROR event with a 410 Expired Status, then the stream ends', async () => {
  const old = (await store.list('/registry/pods/')).revision;
  await putPod(pod('web-1', 'node-1', { app: 'web', v: '3' }));
  await putPod(pod('web-1', 'node-1', { app: 'web', v: '4' }));
  const now = (await store.list('/registry/pods/')).revision;
  await store.compact(now);
  const w = await watch(`/api/v1/pods?watch=1&resourceVersion=${old}`);
  const ev = await w.nth(0);
  assert.equal(ev.type, 'ERROR');
  assert.deepEqual([ev.object.kind, ev.object.code, ev.object.reason], ['Status', 410, 'Expired']);
  assert.match(ev.object.message, /^too old resource version: \d+ \(\d+\)$/);
  await until('the stream to end', () => w.ended(), 5000, 10);
});

test('a write to what is not an object (discovery) is refused with 405 MethodNotAllowed', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/api/v1', method: 'POST' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); })
      .on('error', reject).end('{}');
  });
  assert.equal(status, 405);
});
