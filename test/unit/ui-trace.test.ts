// flatnet ui's POST /api/trace: the request checked against the lab's picture (a 400 names the field
// and the value), one trace at a time (a second one while the first runs gets a 409), the report as
// the answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UiModel } from '../../src/ui/model.js';
import { startUiServer } from '../../src/ui/server.js';
import { until } from '../helpers/until.js';
import { checkTraceRequest, TraceInputError, traceTarget } from '../../src/ui/trace-api.js';

const MODEL = {
  lab: 'l', backend: 'auto', clusterCIDR: '10.244.0.0/16', revision: 1, router: 'l-router', external: { ip: '203.0.113.10' }, segments: [],
  nodes: [{ name: 'node-1', podCIDRs: ['10.244.0.0/24'], alive: true }],
  pods: [
    { id: 'default/client', namespace: 'default', name: 'client', node: 'node-1', ips: ['10.244.0.2'], phase: 'Running', hostNetwork: false, labels: {}, containers: [] },
    { id: 'default/pending', namespace: 'default', name: 'pending', ips: [], phase: 'Pending', hostNetwork: false, labels: {}, containers: [] },
  ],
  services: [{ id: 'default/web', namespace: 'default', name: 'web', type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [], endpoints: [] }],
  policies: [], denied: [],
} as UiModel;

const refused = (body: unknown): { field: string; value: unknown } => {
  try { checkTraceRequest(body, MODEL); } catch (err) {
    assert.ok(err instanceof TraceInputError, String(err));
    return { field: err.field, value: err.value };
  }
  assert.fail(`accepted ${JSON.stringify(body)}`);
};

test('a trace request: the ends must be the lab\'s, the port an integer, the protocol tcp, udp or icmp', () => {
  assert.deepEqual(checkTraceRequest({ from: 'default/client', to: 'svc/default/web', port: 80, proto: 'tcp' }, MODEL),
    { from: 'default/client', to: 'svc/default/web', port: 80, proto: 'tcp' });
  assert.deepEqual(checkTraceRequest({ from: 'node/node-1', to: '10.244.0.2', proto: 'icmp' }, MODEL), { from: 'node/node-1', to: '10.244.0.2', proto: 'icmp' });
  assert.deepEqual(checkTraceRequest({ from: 'external', to: 'default/client' }, MODEL), { from: 'external', to: 'default/client', proto: 'tcp' });
  assert.deepEqual(refused({ from: 'default/nobody', to: 'default/client' }), { field: 'from', value: 'default/nobody' });
  assert.deepEqual(refused({ from: 'default/pending', to: 'default/client' }), { field: 'from', value: 'default/pending' });
  assert.deepEqual(refused({ from: 'svc/default/web', to: 'default/client' }), { field: 'from', value: 'svc/default/web' });
  assert.deepEqual(refused({ from: 'default/client', to: '10.244.0.256' }), { field: 'to', value: '10.244.0.256' });
  assert.deepEqual(refused({ from: 'default/client', to: 'default/client' }), { field: 'to', value: 'default/client' });
  assert.deepEqual(refused({ from: 'default/client', to: 'node/node-1', port: 0 }), { field: 'port', value: 0 });
  assert.deepEqual(refused({ from: 'default/client', to: 'node/node-1', port: '80' }), { field: 'port', value: '80' });
  assert.deepEqual(refused({ from: 'default/client', to: 'node/node-1', port: 80, proto: 'icmp' }), { field: 'port', value: 80 });
  assert.deepEqual(refused({ from: 'default/client', to: 'node/node-1', proto: 'sctp' }), { field: 'proto', value: 'sctp' });
  assert.deepEqual(refused(['default/client']), { field: 'body', value: ['default/client'] });
  assert.equal(traceTarget({ from: 'a/b', to: 'svc/default/web', port: 80, proto: 'tcp' }), 'svc/default/web:80/tcp');
  assert.equal(traceTarget({ from: 'a/b', to: 'external', proto: 'icmp' }), 'external/icmp');
});

test('POST /api/trace: 400 names the field, a second trace while one runs gets 409, the report comes back', async () => {
  let finish: (() => void) | undefined;
  const calls: string[][] = [];
  const server = await startUiServer({
    read: async () => MODEL,
    watch: async () => ({ async stop() {} }),
    trace: (from, to) => { calls.push([from, to]); return new Promise((resolve) => { finish = () => resolve({ outcome: 'delivered', hops: [] }); }); },
  }, { host: '127.0.0.1', port: 0 });
  const post = (body: unknown) => fetch(`${server.url}api/trace`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  try {
    const bad = await post({ from: 'default/client', to: 'svc/default/web', port: 70000 });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: 'port 70000: expected an integer 1-65535', field: 'port', value: 70000 });
    const first = post({ from: 'default/client', to: 'svc/default/web', port: 80 });
    // The first is running once the runner was called: then a second is refused.
    await until('the first trace to start', () => finish !== undefined, 10_000);
    const second = await post({ from: 'default/client', to: 'node/node-1', proto: 'icmp' });
    assert.equal(second.status, 409);
    (finish as unknown as () => void)();
    const ok = await first;
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { outcome: 'delivered', hops: [] });
    assert.deepEqual(calls, [['default/client', 'svc/default/web:80/tcp']]);
    assert.equal((await fetch(`${server.url}api/trace`)).status, 405);
  } finally { await server.close(); }
});
