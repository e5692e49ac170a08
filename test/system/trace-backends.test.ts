// `flatnet trace` across nodes with each backend forced: host-gw (one segment: every peer direct on the
// segment) and vxlan (every peer through the VXLAN device, even on a shared segment). The auto backend,
// which mixes both, is trace.test.ts's lab. Each trace must name the route the backend makes and agree;
// a port nothing listens on is delivered and refused by the pod's kernel.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor } from '../helpers/lab.js';
import type { TraceReport } from '../../src/trace/report.js';

const scope = new TestScope('trb');
after(() => scope.cleanupSync());

const MANIFEST = `apiVersion: v1
kind: Pod
metadata: { name: c1, namespace: default }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-2, namespace: default }
spec: { nodeName: node-2, containers: [{ name: s, command: [flatnet, serve, --port, "8080"], ports: [{ containerPort: 8080 }] }] }
`;

for (const [backend, route] of [['host-gw', /^node-1 route .*direct to node-2 on the segment/], ['vxlan', /^node-1 route .*dev flatnet\.1: VXLAN vni 1, outer 10\.100\.0\.11 → 10\.100\.0\.12 \(node-2\)/]] as const) {
  test(`${backend}: a cross-node trace names the ${backend === 'host-gw' ? 'direct' : 'VXLAN'} route and agrees`, async () => {
    const t = labFor(scope, backend === 'host-gw' ? 'h' : 'v');
    await t.lab.up(cluster(backend, 'one-segment'));
    try {
      await t.applyAndRun(`${backend}.yaml`, MANIFEST, 2, 60_000);
      const r = t.cli('trace', 'default/c1', 'default/web-2:8080', '-o', 'json');
      const report = JSON.parse(r.stdout) as TraceReport;
      const lines = report.hops.map((h) => `${h.node} ${h.text}`);
      assert.equal(r.status, 0, `${JSON.stringify(report.disagreements)}\n${lines.join('\n')}`);
      assert.equal(report.outcome, 'delivered');
      assert.deepEqual([...new Set(report.hops.map((h) => h.node))], ['node-1', 'node-2']);
      assert.ok(lines.some((l) => route.test(l)), lines.join('\n'));
      // A port nothing listens on: delivered, and the sender was told so by the pod's kernel.
      const closed = JSON.parse(t.cli('trace', 'default/c1', 'default/web-2:9999', '-o', 'json').stdout) as TraceReport;
      assert.equal(closed.outcome, 'delivered');
      assert.equal(closed.probe.detail, 'refused: no listener on port 9999 (the kernel answered RST)');
    } finally { await t.lab.down(); }
  });
}
