// A lab whose agents run as in a real cluster: `--datastore kubernetes`, reading the lab's Kubernetes API
// through informers (a relay joins node namespaces to it), while the lab side plays the kubelet (Node
// registration, heartbeat, pods). `flatnet check` must pass as with etcd-mode agents, policy included,
// and every Node must carry the NetworkUnavailable=False the agents patched through the API.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { waitServiceProgrammed } from '../../src/lab/demo.js';
import { NODE_PREFIX } from '../../src/api/keys.js';
import type { Node } from '../../src/api/types.js';

const scope = new TestScope('kds');
after(() => scope.cleanupSync());

const MANIFEST = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: default }
spec:
  replicas: 4
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }]
---
apiVersion: v1
kind: Pod
metadata: { name: db, namespace: default, labels: { app: db } }
spec:
  containers: [{ name: db, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: default, labels: { app: client } }
spec:
  containers: [{ name: client, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: 10.96.0.80, selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: db-from-web, namespace: default }
spec:
  podSelector: { matchLabels: { app: db } }
  ingress: [{ from: [{ podSelector: { matchLabels: { app: web } } }] }]
`;

interface Report { pass: boolean; rules: Array<{ rule: number; status: string; failures: string[]; evidence: string[] }> }

test('a lab with kubernetes-mode agents: NetworkUnavailable=False on every Node, and flatnet check passes, policy included', async () => {
  const t = labFor(scope, 'k');
  await t.lab.up({ ...cluster('auto'), datastore: 'kubernetes' }, { timeoutMs: 90_000 });
  const store = t.lab.store();
  try {
    const conditions = await until('every Node with NetworkUnavailable=False', async () => {
      const nodes = (await store.list(NODE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Node);
      const conds = nodes.map((n) => (n.status?.conditions as Array<{ type: string; status: string; reason?: string }> | undefined)?.find((c) => c.type === 'NetworkUnavailable'));
      return conds.every((c) => c?.status === 'False') ? conds : undefined;
    }, 60_000, 250);
    assert.deepEqual(conditions.map((c) => c!.reason), t.lab.plan().nodes.map(() => 'FlatnetIsUp'));
  } finally { await store.close(); }
  for (const n of t.lab.plan().nodes) {
    assert.match(readFileSync(t.lab.logFile(`agent-${n.name}`), 'utf8'), /NetworkUnavailable=False/, `agent-${n.name} patched it`);
  }
  await t.applyAndRun('workload.yaml', MANIFEST, 6, 90_000);
  await waitServiceProgrammed(t.lab, '10.96.0.80', 80, 4, 60_000);
  const r = t.cli('check', '-o', 'json');
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(r.status, 0, JSON.stringify(report.rules.filter((x) => x.status === 'fail'), null, 1).slice(0, 3000));
  const policy = report.rules.find((x) => x.rule === 11)!;
  assert.equal(policy.status, 'pass');
  assert.match(policy.evidence[0], /[1-9]\d*\/[1-9]\d* denied pairs dropped/);
  // Everything the lab made goes with it, the kubernetes mode's net-conf.json and relay socket included.
  assert.deepEqual((await t.lab.down()).left, []);
});
