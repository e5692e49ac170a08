// The patch formats on plain JSON (patch.ts), and the OpenAPI documents kubectl reads (openapi.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPatch, mergePatch, patchTypeOf, strategicMerge, PatchError, type Json } from '../../src/apiserver/patch.js';
import { groupVersionDocument, openapiRoot } from '../../src/apiserver/openapi.js';

test('merge patch: objects merge, null removes, lists are replaced whole', () => {
  assert.deepEqual(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: null, d: 3 }, l: [3] }), { a: { c: 2, d: 3 }, l: [3] });
  assert.deepEqual(mergePatch({ a: 1 }, 'x'), 'x');
});

test('strategic merge: keyed lists merge by key; unkeyed lists are replaced; directives apply', () => {
  const pod: Json = { spec: { containers: [{ name: 'a', image: 'i', env: [{ name: 'X', value: '1' }] }, { name: 'b', image: 'j' }], tolerations: [{ key: 't' }] } };
  const out = strategicMerge(pod, { spec: { containers: [{ name: 'a', env: [{ name: 'Y', value: '2' }] }], tolerations: [{ key: 'u' }] } }, [], 'Pod') as any;
  assert.deepEqual(out.spec.containers[0].env, [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }]);
  assert.equal(out.spec.containers[1].image, 'j');
  assert.deepEqual(out.spec.tolerations, [{ key: 'u' }]);
  // $setElementOrder puts the listed items in that order; $patch: delete removes one; replace takes the patch's list.
  const ordered = strategicMerge(pod, { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }], containers: [{ name: 'b', image: 'k' }] } }, [], 'Pod') as any;
  assert.deepEqual(ordered.spec.containers.map((c: any) => `${c.name}:${c.image}`), ['b:k', 'a:i']);
  const deleted = strategicMerge(pod, { spec: { containers: [{ name: 'b', $patch: 'delete' }] } }, [], 'Pod') as any;
  assert.deepEqual(deleted.spec.containers.map((c: any) => c.name), ['a']);
  const replaced = strategicMerge(pod, { spec: { containers: [{ name: 'z' }, { $patch: 'replace' }] } }, [], 'Pod') as any;
  assert.deepEqual(replaced.spec.containers, [{ name: 'z' }]);
  const finalizers = strategicMerge({ metadata: { finalizers: ['a', 'b'] } }, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }, [], 'Pod') as any;
  assert.deepEqual(finalizers.metadata.finalizers, ['b']);
});

test('strategic merge: node conditions by type, Service ports by port and protocol (TCP when left out)', () => {
  const node = { status: { conditions: [{ type: 'Ready', status: 'True' }] } };
  const n = strategicMerge(node, { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }, { type: 'Ready', status: 'False' }] } }, [], 'Node') as any;
  assert.deepEqual(n.status.conditions, [{ type: 'Ready', status: 'False' }, { type: 'NetworkUnavailable', status: 'False' }]);
  const svc: Json = { spec: { ports: [{ port: 53, protocol: 'UDP', name: 'u' }, { port: 53, name: 't' }] } };
  const s = strategicMerge(svc, { spec: { ports: [{ port: 53, protocol: 'TCP', targetPort: 5353 }] } }, [], 'Service') as any;
  assert.deepEqual(s.spec.ports, [{ port: 53, protocol: 'UDP', name: 'u' }, { port: 53, name: 't', protocol: 'TCP', targetPort: 5353 }]);
});

test('JSON patch: add, remove, replace, move, copy, test; a missing path or failed test throws', () => {
  const doc = { a: { b: [1, 2] }, c: 'x' };
  const out = jsonPatch(doc, [
    { op: 'add', path: '/a/b/-', value: 3 }, { op: 'remove', path: '/a/b/0' }, { op: 'replace', path: '/c', value: 'y' },
    { op: 'copy', from: '/c', path: '/d' }, { op: 'move', from: '/d', path: '/e~1f' }, { op: 'test', path: '/c', value: 'y' },
  ]);
  assert.deepEqual(out, { a: { b: [2, 3] }, c: 'y', 'e/f': 'y' });
  assert.deepEqual(doc, { a: { b: [1, 2] }, c: 'x' }, 'the input is not changed');
  assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/nope', value: 1 }]), PatchError);
  assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/c', value: 'z' }]), PatchError);
});

test('patch types from Content-Type; anything else is undefined (415)', () => {
  assert.equal(patchTypeOf('application/strategic-merge-patch+json; charset=utf-8'), 'application/strategic-merge-patch+json');
  assert.equal(patchTypeOf('application/apply-patch+yaml'), undefined);
});

test('OpenAPI v3: the root lists each group version; a document tags PATCH with its kind and fieldValidation', () => {
  const root = openapiRoot() as { paths: Record<string, { serverRelativeURL: string }> };
  assert.match(root.paths['api/v1'].serverRelativeURL, /^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]+$/);
  assert.ok(root.paths['apis/rbac.authorization.k8s.io/v1']);
  const doc = groupVersionDocument('apis/apps/v1') as any;
  const patch = doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'].patch;
  assert.deepEqual(patch['x-kubernetes-group-version-kind'], { group: 'apps', version: 'v1', kind: 'Deployment' });
  assert.ok(patch.parameters.some((p: any) => p.name === 'fieldValidation' && p.in === 'query'));
  assert.deepEqual(doc.components.schemas['io.k8s.api.apps.v1.Deployment']['x-kubernetes-group-version-kind'], [{ group: 'apps', version: 'v1', kind: 'Deployment' }]);
  assert.equal(groupVersionDocument('apis/nothing/v1'), undefined);
});
