// `get` output in kubectl's shapes: table columns and padding, -o wide, -A, AGE, and the JSON/YAML List.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { formatJson, formatTable, formatYaml, humanDuration } from '../../src/api/format.js';
import type { Deployment, Namespace, Node, Pod } from '../../src/api/types.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

const nodes: Node[] = [
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1', creationTimestamp: ago(3 * 86400) },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.50.11' }], conditions: [{ type: 'Ready', status: 'True' }] } },
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-2', creationTimestamp: ago(45) }, spec: {},
    status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } },
];

const pods: Pod[] = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default', creationTimestamp: ago(200) },
    spec: { nodeName: 'node-1', containers: [{ name: 'a' }, { name: 'b' }] },
    status: { phase: 'Running', podIP: '10.244.1.5', conditions: [{ type: 'Ready', status: 'True' }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pending-pod', namespace: 'demo', creationTimestamp: ago(5) },
    spec: { containers: [{ name: 'c' }] } },
];

test('nodes: columns, STATUS from the Ready condition, wide adds addresses and pod CIDR', () => {
  assert.equal(formatTable('Node', nodes, { wide: false, allNamespaces: false, now: NOW }), [
    'NAME     STATUS     ROLES    AGE   VERSION',
    'node-1   Ready      <none>   3d    flatnet',
    'node-2   NotReady   <none>   45s   flatnet',
  ].join('\n'));
  assert.equal(formatTable('Node', nodes, { wide: true, allNamespaces: true, now: NOW }), [
    'NAME     STATUS     ROLES    AGE   VERSION   INTERNAL-IP     EXTERNAL-IP   POD-CIDR',
    'node-1   Ready      <none>   3d    flatnet   192.168.50.11   <none>        10.244.1.0/24',
    'node-2   NotReady   <none>   45s   flatnet   <none>          <none>        <none>',
  ].join('\n'), 'nodes are cluster-scoped: -A adds no NAMESPACE column');
});

test('pods: READY from the condition, STATUS is the phase; wide and -A columns', () => {
  assert.equal(formatTable('Pod', pods, { wide: false, allNamespaces: false, now: NOW }), [
    'NAME          READY   STATUS    RESTARTS   AGE',
    'web           2/2     Running   0          3m20s',
    'pending-pod   0/1     Pending   0          5s',
  ].join('\n'));
  assert.equal(formatTable('Pod', pods, { wide: true, allNamespaces: true, now: NOW }), [
    'NAMESPACE   NAME          READY   STATUS    RESTARTS   AGE     IP           NODE     NOMINATED NODE   READINESS GATES',
    'default     web           2/2     Running   0          3m20s   10.244.1.5   node-1   <none>           <none>',
    'demo        pending-pod   0/1     Pending   0          5s      <none>       <none>   <none>           <none>',
  ].join('\n'));
});

test('namespaces and deployments', () => {
  const ns: Namespace[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', creationTimestamp: ago(7200) }, status: { phase: 'Active' } }];
  assert.equal(formatTable('Namespace', ns, { wide: false, allNamespaces: false, now: NOW }), 'NAME      STATUS   AGE\ndefault   Active   120m');
  const dep: Deployment[] = [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'demo', creationTimestamp: ago(60) },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web' }] } } },
    status: { replicas: 3, readyReplicas: 2 } }];
  assert.equal(formatTable('Deployment', dep, { wide: false, allNamespaces: true, now: NOW }), [
    'NAMESPACE   NAME   READY   UP-TO-DATE   AVAILABLE   AGE',
    'demo        web    2/3     3            2           60s',
  ].join('\n'));
});

test('AGE spells durations as kubectl does', () => {
  const cases: Array<[number, string]> = [[0, '0s'], [45, '45s'], [119, '119s'], [120, '2m'], [190, '3m10s'], [600, '10m'], [179 * 60, '179m'],
    [3 * 3600, '3h'], [3 * 3600 + 5 * 60, '3h5m'], [8 * 3600, '8h'], [47 * 3600, '47h'], [2 * 86400, '2d'], [2 * 86400 + 3600, '2d1h'],
    [8 * 86400, '8d'], [800 * 86400, '2y70d'], [3000 * 86400, '8y']];
  for (const [s, want] of cases) assert.equal(humanDuration(s * 1000), want, `${s}s`);
  assert.equal(humanDuration(-5000), '<invalid>');
});

test('json: a kubectl List with 4-space indent, or the single object', () => {
  const list = formatJson(pods, { asList: true });
  const parsed = JSON.parse(list);
  assert.deepEqual(Object.keys(parsed), ['apiVersion', 'items', 'kind', 'metadata']);
  assert.deepEqual(parsed, { apiVersion: 'v1', items: pods, kind: 'List', metadata: { resourceVersion: '' } });
  assert.ok(list.startsWith('{\n    "apiVersion": "v1",\n    "items": [\n        {'), list.slice(0, 60));
  assert.deepEqual(JSON.parse(formatJson([pods[0]], { asList: false })), pods[0]);
  assert.deepEqual(JSON.parse(formatJson([], { asList: true })).items, []);
});

test('yaml: the same documents, items at the key indentation', () => {
  const text = formatYaml(pods, { asList: true });
  assert.deepEqual(parseYaml(text), { apiVersion: 'v1', items: pods, kind: 'List', metadata: { resourceVersion: '' } });
  assert.match(text, /^apiVersion: v1\nitems:\n- apiVersion: v1\n/);
  assert.deepEqual(parseYaml(formatYaml([nodes[0]], { asList: false })), nodes[0]);
});

test('pods: a pod its kubelet rejected shows the reason as STATUS, as kubectl does (OutOfpods)', () => {
  const rejected: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'extra', namespace: 'default', creationTimestamp: ago(5) },
    spec: { nodeName: 'node-1', containers: [{ name: 'c' }] }, status: { phase: 'Failed', reason: 'OutOfpods', message: 'Pod was rejected' } };
  assert.equal(formatTable('Pod', [rejected], { wide: false, allNamespaces: false, now: NOW }), [
    'NAME    READY   STATUS      RESTARTS   AGE',
    'extra   0/1     OutOfpods   0          5s',
  ].join('\n'));
});
