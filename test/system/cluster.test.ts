// The cluster network end to end on a lab: `flatnet check` proves the model's rules (and the service
// rules) with host-gw, vxlan and auto, and fails (saying which pairs) when host-gw cannot cross a router.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor, labNetnses } from '../helpers/lab.js';
import { waitPodsRunning, waitServiceProgrammed } from '../../src/lab/demo.js';

const scope = new TestScope('cl');
after(() => scope.cleanupSync());

const PODS = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: default }
spec:
  replicas: 6
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }]
---
apiVersion: v1
kind: Pod
metadata: { name: duo, namespace: default }
spec:
  containers:
    - { name: a, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }
    - { name: b, command: [flatnet, serve, --port, "9090/udp"], ports: [{ containerPort: 9090, protocol: UDP }] }
---
apiVersion: v1
kind: Pod
metadata: { name: host, namespace: default }
spec:
  hostNetwork: true
  containers: [{ name: main, command: [sleep, infinity] }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: 10.96.0.80, selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: web-np, namespace: default }
spec: { type: NodePort, selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: empty, namespace: default }
spec: { selector: { app: none }, ports: [{ port: 80 }] }
`;
const podsFile = join(scope.dir, 'pods.yaml');
writeFileSync(podsFile, PODS);

async function upWithPods(suffix: string, backend: 'host-gw' | 'vxlan' | 'auto', shape: 'one-segment' | 'two-segments') {
  const t = labFor(scope, suffix);
  await t.lab.up(cluster(backend, shape));
  const r = t.cli('apply', '-f', podsFile);
  assert.equal(r.status, 0, r.stderr);
  const store = t.lab.store();
  try { await waitPodsRunning(store, 8, 60_000); } finally { await store.close(); }
  await waitServiceProgrammed(t.lab, '10.96.0.80', 80, 6, 30_000);
  return t;
}

for (const [backend, shape] of [['host-gw', 'one-segment'], ['vxlan', 'two-segments'], ['auto', 'two-segments']] as const) {
  test(`flatnet check passes every rule with ${backend} (${shape})`, async () => {
    const t = await upWithPods(backend === 'host-gw' ? 'h' : backend === 'vxlan' ? 'v' : 'a', backend, shape);
    const r = t.cli('check', '-o', 'json');
    const report = JSON.parse(r.stdout) as { pass: boolean; rules: Array<{ rule: number; status: string; failures: string[] }> };
    assert.equal(r.status, 0, JSON.stringify(report.rules.filter((x) => x.status === 'fail'), null, 2));
    assert.deepEqual(report.rules.map((x) => x.status), Array(10).fill('pass'), 'rules 1-6 (pods) and 7-10 (Services)');
    const text = t.cli('check');
    assert.match(text.stdout, /\[PASS\] rule 1: every pod reaches every other pod/);
    await t.lab.down();
    assert.deepEqual(labNetnses(t.lab.name), [], 'lab down leaves no namespace');
  });
}

test('host-gw across two L3 segments: check fails rule 1 for the cross-segment pairs and names them', async () => {
  const t = await upWithPods('x', 'host-gw', 'two-segments');
  const r = t.cli('check', '-o', 'json');
  assert.equal(r.status, 1, 'the check itself fails');
  const report = JSON.parse(r.stdout) as { rules: Array<{ rule: number; status: string; failures: string[]; evidence: string[] }> };
  const rule1 = report.rules[0];
  assert.equal(rule1.status, 'fail');
  const store = t.lab.store();
  const nodeOfPod = new Map<string, string>();
  try {
    for (const kv of (await store.list('/registry/pods/')).items) {
      const p = JSON.parse(kv.value);
      nodeOfPod.set(`${p.metadata.namespace}/${p.metadata.name}`, p.spec.nodeName);
    }
  } finally { await store.close(); }
  // node-3 is alone on segment b: exactly the pairs between it and the others fail.
  for (const f of rule1.failures) {
    const m = /^(\S+) -> (\S+) /.exec(f)!;
    const ends = [nodeOfPod.get(m[1]), nodeOfPod.get(m[2])];
    assert.ok(ends.includes('node-3') && !(ends[0] === 'node-3' && ends[1] === 'node-3'), `unexpected failure: ${f}`);
    assert.match(f, /cross-node/);
  }
  assert.ok(rule1.failures.length > 0);
  assert.ok(rule1.evidence.some((e) => /same node|cross-node/.test(e)), 'same-segment pairs still pass');
  await t.lab.down();
});
