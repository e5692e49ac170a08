// The data plane does not depend on the control plane's liveness: a frozen or dead agent leaves its
// node's routes in place on the others while its Node exists.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { labFor, type TestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { startProbes, startStream } from '../helpers/stream.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import { defaultCluster } from '../../src/lab/cluster-file.js';
import { livePid } from '../../src/lab/processes.js';
import type { Pod } from '../../src/api/types.js';

const scope = new TestScope('lv');
after(() => scope.cleanupSync());
let t: TestLab;

before(async () => {
  t = labFor(scope, 'v');
  const c = defaultCluster();
  c.backend = 'auto';
  await t.lab.up(c);
});

test('an agent frozen (SIGSTOP) for 30 s: a cross-node TCP stream keeps flowing and probes keep answering', async () => {
  const file = join(scope.dir, 'stream.yaml');
  writeFileSync(file, `apiVersion: v1
kind: Pod
metadata: { name: srv, namespace: default }
spec: { nodeName: node-3, containers: [{ name: s, command: [flatnet, serve, --port, "7000"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: cli, namespace: default }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
`);
  assert.equal(t.cli('apply', '-f', file).status, 0);
  const store = t.lab.store();
  let pods: Pod[];
  try { pods = await waitPodsRunning(store, 2, 30_000); } finally { await store.close(); }
  const srv = pods.find((p) => p.metadata.name === 'srv')!;
  const cli = pods.find((p) => p.metadata.name === 'cli')!;
  const stream = await startStream(scope, podNetnsName(t.lab.name, cli.metadata.uid!), srv.status!.podIP!, 7000);
  const probes = startProbes(t, 'default/cli', [`${srv.status!.podIP}:7000`]);
  const agent = livePid(t.lab.pidFile('agent-node-3'))!;
  process.kill(agent, 'SIGSTOP');
  const frozenAt = Date.now();
  try {
    await until('node-3 NotReady', async () => /node-3\s+NotReady/.test(t.cli('get', 'nodes').stdout), 20_000);
    await until('30 s of freeze', () => Date.now() - frozenAt >= 30_000, 40_000, 500);
  } finally { process.kill(agent, 'SIGCONT'); }
  const p = await probes.stop();
  const r = await stream.stop();
  assert.equal(r.error, undefined, `the stream broke: ${JSON.stringify(r)}`);
  assert.ok(r.maxGap < 1000, `longest gap between echoes ${r.maxGap} ms`);
  assert.deepEqual(p.failures, [], `${p.failures.length} of ${p.probes} probes failed`);
});
