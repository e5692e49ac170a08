// How the check runs its probes, with fake workers: within its bounds (starts, live workers, probes in
// flight per worker and overall), every probe answered once, a dead worker's probes failed with its
// error; and what the check waits for first (pods Ready, EndpointSlices caught up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPool, type PoolLimits, type StartWorker } from '../../src/check/pool.js';
import { laggingServices, unreadyPods, waitSettled } from '../../src/check/ready.js';
import { attemptPassed } from '../../src/workload/probe-worker.js';
import type { StreamedProbe } from '../../src/workload/probe-worker.js';
import type { EndpointSlice, Pod, Service } from '../../src/api/types.js';

const probesFor = (netns: string, n: number, first: number): StreamedProbe[] =>
  Array.from({ length: n }, (_, i) => ({ id: first + i, host: `10.0.0.${i}`, port: 80, protocol: 'tcp', timeoutMs: 100, netns } as StreamedProbe));

/** Fake workers that start and answer after a random few ms, counting what runs at once. */
function fakes(opts: { dies?: string } = {}) {
  const seen = { starting: 0, maxStarting: 0, live: 0, maxLive: 0, inFlight: 0, maxInFlight: 0, maxPerWorker: 0, ended: [] as string[] };
  const later = (fn: () => void) => setTimeout(fn, Math.random() * 3);
  const start: StartWorker = (netns, ev) => {
    seen.starting++; seen.live++;
    seen.maxStarting = Math.max(seen.maxStarting, seen.starting);
    seen.maxLive = Math.max(seen.maxLive, seen.live);
    let mine = 0;
    later(() => { seen.starting--; ev.ready(); });
    return {
      send: (p) => {
        seen.inFlight++; mine++;
        seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
        seen.maxPerWorker = Math.max(seen.maxPerWorker, mine);
        if (netns === opts.dies) { later(() => { seen.inFlight -= mine; seen.live--; ev.exit(`worker in ${netns} crashed`); }); return; }
        later(() => { seen.inFlight--; mine--; ev.result({ id: p.id, ok: true, ms: 1, attempts: 1 }); });
      },
      end: () => { seen.ended.push(netns); later(() => { seen.live--; ev.exit(); }); },
    };
  };
  return { seen, start };
}

test('runPool: every probe answered once, never more than the limits at once, every worker ended', async () => {
  const work = new Map<string, StreamedProbe[]>();
  for (let w = 0; w < 12; w++) work.set(`ns${w}`, probesFor(`ns${w}`, 20 + w, w * 100));
  const limits: PoolLimits = { starting: 2, workers: 4, perWorker: 3, total: 8 };
  const { seen, start } = fakes();
  const results = await runPool(work, start, limits);
  const ids = results.map((r) => r.id).sort((a, b) => a - b);
  assert.deepEqual(ids, [...work.values()].flat().map((p) => p.id).sort((a, b) => a - b));
  assert.ok(results.every((r) => r.ok));
  assert.ok(seen.maxStarting <= 2 && seen.maxStarting >= 1, `starting ${seen.maxStarting}`);
  assert.ok(seen.maxLive <= 4, `live ${seen.maxLive}`);
  assert.ok(seen.maxPerWorker <= 3, `per worker ${seen.maxPerWorker}`);
  assert.ok(seen.maxInFlight <= 8 && seen.maxInFlight >= 3, `in flight ${seen.maxInFlight}`);
  assert.deepEqual(seen.ended.sort(), [...work.keys()].sort());
});

test('runPool: a worker that dies fails its probes with its error; the others still run', async () => {
  const work = new Map([['a', probesFor('a', 5, 0)], ['b', probesFor('b', 5, 10)]]);
  const results = await runPool(work, fakes({ dies: 'a' }).start, { starting: 2, workers: 2, perWorker: 2, total: 4 });
  assert.equal(results.length, 10);
  assert.ok(results.filter((r) => r.id < 10).every((r) => !r.ok && r.error === 'worker in a crashed'));
  assert.ok(results.filter((r) => r.id >= 10).every((r) => r.ok));
});

test('attemptPassed: an answer passes; a refusal passes only where one is expected, and only in time', () => {
  const p = { id: 1, host: '10.96.0.1', port: 80, protocol: 'tcp' } as const;
  assert.equal(attemptPassed(p, { ok: true, ms: 3 }), true);
  assert.equal(attemptPassed(p, { ok: false, error: 'timeout after 2000 ms', ms: 2000 }), false);
  const refused = { ...p, expect: 'refused' as const, withinMs: 1000 };
  assert.equal(attemptPassed(refused, { ok: false, error: 'ECONNREFUSED', ms: 4 }), true);
  assert.equal(attemptPassed(refused, { ok: false, error: 'ECONNREFUSED', ms: 1500 }), false, 'too slow: tried again');
  assert.equal(attemptPassed(refused, { ok: true, ms: 4 }), false);
});

const pod = (name: string, opts: { phase?: 'Pending' | 'Running'; ready?: boolean; message?: string; terminating?: boolean; labels?: Record<string, string>; ip?: string } = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'd', labels: opts.labels, ...(opts.terminating ? { deletionTimestamp: new Date().toISOString() } : {}) },
  spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 8080 }] }] },
  status: { phase: opts.phase ?? 'Running', podIP: opts.ip, message: opts.phase === 'Pending' ? opts.message : undefined,
    conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True', ...(opts.ready === false && opts.message ? { message: opts.message } : {}) }] },
} as Pod);

test('unreadyPods: not Ready or not Running, with the kubelet\'s reason; terminating pods are not waited for', () => {
  const pods = [pod('ok'), pod('cold', { ready: false, message: 'ports not listening: 8080/tcp' }), pod('new', { phase: 'Pending', ready: false, message: 'CNI ADD failed' }),
    pod('going', { ready: false, terminating: true })];
  assert.deepEqual(unreadyPods(pods), [
    { pod: 'd/cold', node: 'n1', reason: 'ports not listening: 8080/tcp' },
    { pod: 'd/new', node: 'n1', reason: 'Pending: CNI ADD failed' },
  ]);
});

test('laggingServices and waitSettled: the check waits until the slices say what readiness says, and no longer than its bound', async () => {
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'd' },
    spec: { selector: { app: 'web' }, clusterIP: '10.96.0.9', type: 'ClusterIP', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster', ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] } } as Service;
  const pods = [pod('w1', { labels: { app: 'web' }, ip: '10.244.0.2' }), pod('w2', { labels: { app: 'web' }, ip: '10.244.0.3' })];
  const slice = (ips: string[]): EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ name: '', protocol: 'TCP', port: 8080 }],
    metadata: { name: 'web-x', namespace: 'd', labels: { 'kubernetes.io/service-name': 'web' } },
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false } })),
  });
  assert.deepEqual(laggingServices([svc], [slice(['10.244.0.2'])], pods), ['d/web'], 'w2 became Ready; the slice does not say so yet');
  assert.deepEqual(laggingServices([svc], [slice(['10.244.0.2', '10.244.0.3'])], pods), []);

  let reads = 0;
  const settled = await waitSettled(async () => ({ pods, services: [svc], slices: [slice(++reads < 3 ? ['10.244.0.2'] : ['10.244.0.2', '10.244.0.3'])] }), 10_000, { pollMs: 1 });
  assert.deepEqual(settled, []);
  assert.equal(reads, 3, 'it read until the controller caught up');
  const cold = [pod('w1', { ready: false, message: 'ports not listening: 8080/tcp' })];
  const said: string[] = [];
  assert.deepEqual(await waitSettled(async () => ({ pods: cold, services: [], slices: [] }), 30, { pollMs: 5, log: (l) => said.push(l) }),
    [{ pod: 'd/w1', node: 'n1', reason: 'ports not listening: 8080/tcp' }]);
  assert.deepEqual(said, ['waiting up to 0 s for 1 pod to be Ready: d/w1'], 'said once');
});
