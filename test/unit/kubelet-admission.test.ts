// The lab kubelet's admission: pods bound to a node past its maxPods, or with more containers than the
// lab runs, are rejected (phase Failed, with a reason) and start no process; the others run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/store/memory.js';
import { objectKey } from '../../src/api/keys.js';
import type { Pod } from '../../src/api/types.js';
import { Kubelet, type Supervisor } from '../../src/lab/kubelet.js';
import { until } from '../helpers/until.js';

test('kubelet: a node past maxPods rejects the newest pods (OutOfpods); a pod of 10,000 containers is rejected, starting nothing', async () => {
  const store = new MemoryStore();
  const dir = mkdtempSync(join(tmpdir(), 'fnt-kubelet-'));
  const started: string[] = [];
  const supervisor: Supervisor = {
    start: async (spec) => { started.push(spec.name); return 1; },
    alive: () => true,
    stop: async () => undefined,
  };
  const pod = (name: string, at: number, containers = 1): Pod => ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'demo', uid: `uid-${name}`, creationTimestamp: `2024-01-01T00:00:0${at}Z` },
    spec: { nodeName: 'n1', hostNetwork: true, containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}` })) },
    status: { phase: 'Pending' },
  });
  for (const p of [pod('a', 1), pod('b', 2), pod('c', 3), pod('wide', 4, 10_000)]) await store.put(objectKey('Pod', p.metadata.name, 'demo'), JSON.stringify(p));
  const kubelet = new Kubelet({
    store, nodeName: 'n1', nodeIP: '192.0.2.1', netnsPrefix: 'x', nodeDir: dir, confFile: join(dir, 'none.conflist'),
    cniBinDirs: [], binDir: dir, supervisor, log: () => undefined, maxPods: 2,
  });
  const status = async (name: string) => (JSON.parse((await store.get(objectKey('Pod', name, 'demo')))!.value) as Pod).status;
  try {
    await kubelet.start();
    await until('c to be rejected', async () => (await status('c'))?.phase === 'Failed');
    assert.deepEqual(await status('c'), { phase: 'Failed', reason: 'OutOfpods', message: 'Pod was rejected: Node didn\'t have enough resource: pods (maxPods 2)' });
    await until('wide to be rejected', async () => (await status('wide'))?.phase === 'Failed');
    assert.equal((await status('wide'))?.reason, 'TooManyContainers');
    assert.match((await status('wide'))?.message ?? '', /it has 10000 containers; this kubelet runs at most 64 per pod/);
    await until('a and b to run', async () => (await status('a'))?.phase === 'Running' && (await status('b'))?.phase === 'Running');
    assert.deepEqual(started.sort(), ['demo/a/c0', 'demo/b/c0']);
  } finally {
    await kubelet.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
