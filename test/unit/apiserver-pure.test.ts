// The lab API's decisions without a server: routes, selectors, Table columns and how a store event
// reads to a filtered watcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiResourceList, findResource, parseRoute } from '../../src/apiserver/resources.js';
import { matchLabels, matches, parseFieldSelector, parseLabelSelector, SelectorError } from '../../src/apiserver/selectors.js';
import { toTable, wantsTable } from '../../src/apiserver/table.js';
import { stubFromKey, translate } from '../../src/apiserver/watch.js';
import type { Pod } from '../../src/api/types.js';

const pods = findResource('', 'v1', 'pods')!;
const pod = (name: string, labels: Record<string, string>, nodeName?: string): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels, creationTimestamp: '2024-05-01T12:00:00Z' },
  spec: { containers: [{ name: 'c' }], ...(nodeName ? { nodeName } : {}) }, status: { phase: 'Running', podIP: '10.244.1.5' },
});

test('routes: discovery, cluster-scoped, namespaced and all-namespaces paths; unknown ones', () => {
  assert.deepEqual(parseRoute('/api'), { type: 'api' });
  assert.deepEqual(parseRoute('/apis/apps/v1'), { type: 'resources', group: 'apps', version: 'v1' });
  assert.deepEqual(parseRoute('/apis/apps'), { type: 'group', group: 'apps' });
  const ns = parseRoute('/api/v1/namespaces/default');
  assert.ok(ns.type === 'objects' && ns.resource.kind === 'Namespace' && ns.name === 'default' && ns.namespace === undefined);
  const one = parseRoute('/api/v1/namespaces/default/pods/web-1');
  assert.ok(one.type === 'objects' && one.resource.kind === 'Pod' && one.namespace === 'default' && one.name === 'web-1');
  const all = parseRoute('/apis/networking.k8s.io/v1/networkpolicies');
  assert.ok(all.type === 'objects' && all.resource.kind === 'NetworkPolicy' && all.namespace === undefined && all.name === undefined);
  const dep = parseRoute('/apis/apps/v1/namespaces/demo/deployments');
  assert.ok(dep.type === 'objects' && dep.resource.kind === 'Deployment' && dep.namespace === 'demo');
  for (const p of ['/api/v1/pods/web-1', '/api/v1/widgets', '/apis/apps/v2/deployments', '/api/v1/namespaces/x/nodes', '/healthz']) {
    assert.deepEqual(parseRoute(p), { type: 'unknown' }, p);
  }
});

test('discovery lists each served resource with its verbs, scope and short names', () => {
  const core = apiResourceList('', 'v1')!;
  assert.deepEqual(core.resources.map((r) => r.name).filter((n) => !n.includes('/')).sort(),
    ['configmaps', 'namespaces', 'nodes', 'pods', 'secrets', 'serviceaccounts', 'services']);
  assert.ok(core.resources.some((r) => r.name === 'nodes/status'));
  const p = core.resources.find((r) => r.name === 'pods')!;
  assert.deepEqual([p.namespaced, p.kind, p.shortNames, p.verbs], [true, 'Pod', ['po'], ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']]);
  assert.equal(apiResourceList('discovery.k8s.io', 'v1')!.resources[0].kind, 'EndpointSlice');
  assert.equal(apiResourceList('apps', 'v2'), undefined);
});

test('label selectors: equality, inequality, set-based and existence, as apimachinery parses them', () => {
  const labels = { app: 'web', tier: 'front' };
  const ok = (s: string) => matchLabels(parseLabelSelector(s), labels);
  assert.ok(ok('app=web') && ok('app==web') && ok('app!=db') && ok('tier in (front, back)') && ok('app,!missing'));
  assert.ok(ok('app=web,tier notin (back)') && ok(''));
  assert.ok(!ok('app=db') && !ok('app!=web') && !ok('tier in (back)') && !ok('missing') && !ok('!app'));
  assert.ok(matchLabels(parseLabelSelector('x!=1'), {}), 'a missing key is not equal to anything');
  assert.throws(() => parseLabelSelector('app=web=x'), SelectorError);
});

test('field selectors: metadata.name, metadata.namespace, and spec.nodeName for pods only', () => {
  const p = pod('web-1', {}, 'node-1');
  assert.ok(matches({ labels: [], fields: parseFieldSelector('spec.nodeName=node-1,metadata.name=web-1', 'Pod', 'pods') }, p));
  assert.ok(!matches({ labels: [], fields: parseFieldSelector('spec.nodeName!=node-1', 'Pod', 'pods') }, p));
  assert.ok(matches({ labels: [], fields: parseFieldSelector('metadata.namespace==default', 'Pod', 'pods') }, p));
  assert.throws(() => parseFieldSelector('spec.nodeName=node-1', 'Service', 'services'), /"spec.nodeName" is not a known field selector/);
  assert.throws(() => parseFieldSelector('garbage', 'Pod', 'pods'), /invalid selector/);
});

test('Table: kubectl recognises the Accept header; -o wide columns have priority 1; rows carry metadata', () => {
  assert.ok(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json'));
  assert.ok(!wantsTable('application/json') && !wantsTable(undefined));
  const t = toTable(pods, [pod('web-1', {}, 'node-1')], '7', { includeObject: 'Metadata', now: Date.parse('2024-05-01T12:01:00Z') });
  assert.deepEqual(t.columnDefinitions!.map((c) => `${c.name}:${c.priority}`),
    ['Name:0', 'READY:0', 'STATUS:0', 'RESTARTS:0', 'AGE:0', 'IP:1', 'NODE:1', 'NOMINATED NODE:1', 'READINESS GATES:1']);
  assert.deepEqual(t.rows[0].cells, ['web-1', '0/1', 'Running', '0', '60s', '10.244.1.5', 'node-1', '<none>', '<none>']);
  assert.deepEqual(t.rows[0].object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: pod('web-1', {}, 'node-1').metadata });
  assert.deepEqual(t.metadata, { resourceVersion: '7' });
  assert.equal(toTable(pods, [], '7', { includeObject: 'None', noHeaders: true }).columnDefinitions, undefined);
});

test('a filtered watch: an object that starts matching is ADDED, one that stops matching DELETED', () => {
  const sel = { labels: parseLabelSelector('app=web'), fields: [] };
  const key = '/registry/pods/default/web-1';
  const put = (p: Pod, mod: number, create: number) => ({ type: 'put' as const, key, value: JSON.stringify(p), modRevision: mod, createRevision: create });
  assert.equal(translate(pods, put(pod('web-1', { app: 'web' }), 5, 5), undefined, sel)?.type, 'ADDED');
  assert.equal(translate(pods, put(pod('web-1', { app: 'web' }), 6, 5), pod('web-1', { app: 'web' }), sel)?.type, 'MODIFIED');
  assert.equal(translate(pods, put(pod('web-1', { app: 'db' }), 7, 5), pod('web-1', { app: 'web' }), sel)?.type, 'DELETED');
  assert.equal(translate(pods, put(pod('web-1', { app: 'web' }), 8, 5), pod('web-1', { app: 'db' }), sel)?.type, 'ADDED');
  assert.equal(translate(pods, put(pod('web-1', { app: 'db' }), 9, 5), pod('web-1', { app: 'db' }), sel), undefined);
  const del = translate(pods, { type: 'delete', key, modRevision: 10 }, pod('web-1', { app: 'web' }), sel);
  assert.equal(del?.type, 'DELETED');
  assert.equal(del?.object.metadata.resourceVersion, '10', 'a DELETED object carries the delete revision');
  // A replay from an old revision may see a delete of an object it never saw: known by its key alone.
  const stub = translate(pods, { type: 'delete', key, modRevision: 11 }, undefined, { labels: [], fields: [] });
  assert.deepEqual(stub?.object.metadata, { namespace: 'default', name: 'web-1', resourceVersion: '11' });
  assert.deepEqual(stubFromKey(findResource('', 'v1', 'nodes')!, '/registry/nodes/node-1').metadata, { name: 'node-1' });
});
