// flatnet ui's data: the model built from objects (pure), and the server's event stream sending a new
// model after each change its source reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { buildModel, type UiInputs, type UiModel } from '../../src/ui/model.js';
import { startUiServer } from '../../src/ui/server.js';
import { namespace, pod, policy } from '../helpers/policy-objects.js';
import type { EndpointSlice, Node, Service } from '../../src/api/types.js';

const node = (name: string, ip: string, cidr: string): Node => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { podCIDR: cidr, podCIDRs: [cidr] },
  status: { addresses: [{ type: 'InternalIP', address: ip }] },
} as Node);

function inputs(): UiInputs {
  const web = pod('default', 'web', { node: 'node-2', ip: '10.244.1.2', labels: { app: 'web' }, ports: [{ port: 8080 }] });
  const client = pod('default', 'client', { node: 'node-1', ip: '10.244.0.2' });
  const svc: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' },
    spec: { type: 'NodePort', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' } };
  const slice: EndpointSlice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: 'web-x', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'default', name: 'web' } }],
    ports: [{ name: '', protocol: 'TCP', port: 8080 }] };
  for (const p of [web, client]) p.status = { ...p.status, phase: 'Running' };
  return {
    lab: 'l', backend: 'auto', clusterCIDR: '10.244.0.0/16', revision: 7, router: 'l-router', external: { ip: '203.0.113.10' },
    segments: [{ name: 'a', subnet: '10.100.0.0/24', routerAddress: '10.100.0.1' }],
    planNodes: [{ name: 'node-1', segment: 'a', ip: '10.100.0.11' }, { name: 'node-2', segment: 'a', ip: '10.100.0.12' }],
    nodes: [node('node-2', '10.100.0.12', '10.244.1.0/24'), node('node-1', '10.100.0.11', '10.244.0.0/24')], alive: new Set(['node-1']),
    pods: [web, client], services: [svc], slices: [slice], namespaces: [namespace('default')],
    policies: [policy('default', 'deny-web', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] })],
  };
}

test('the model: nodes with address, pod CIDR and heartbeat; pods with IPs; Services with their endpoint pods', () => {
  const m = buildModel(inputs());
  assert.deepEqual(m.nodes, [
    { name: 'node-1', segment: 'a', ip: '10.100.0.11', podCIDRs: ['10.244.0.0/24'], alive: true },
    { name: 'node-2', segment: 'a', ip: '10.100.0.12', podCIDRs: ['10.244.1.0/24'], alive: false },
  ]);
  assert.deepEqual(m.pods.map((p) => `${p.id} ${p.node} ${p.ips.join(',')}`), ['default/client node-1 10.244.0.2', 'default/web node-2 10.244.1.2']);
  assert.deepEqual(m.services[0].ports, [{ port: 80, protocol: 'TCP', targetPort: '8080', nodePort: 30080 }]);
  assert.deepEqual(m.services[0].endpoints, [{ ip: '10.244.1.2', ready: true, pod: 'default/web' }]);
});

test('the model: who may not talk to whom comes from the policy evaluator, naming the isolating policy', () => {
  const m = buildModel(inputs());
  assert.deepEqual(m.denied, [{ from: 'default/client', to: 'default/web', port: 8080, protocol: 'TCP', isolatedBy: ['default/deny-web'] }]);
  assert.deepEqual(buildModel({ ...inputs(), policies: [] }).denied, []);
});

/** The first `count` models the server's event stream sends. */
function models(url: string, count: number): Promise<UiModel[]> {
  return new Promise((resolve, reject) => {
    const got: UiModel[] = [];
    let buf = '';
    const req = request(`${url}events`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const data = /^data: (.*)$/m.exec(buf.slice(0, i))?.[1];
          buf = buf.slice(i + 2);
          if (data) got.push(JSON.parse(data) as UiModel);
          if (got.length === count) { req.destroy(); resolve(got); return; }
        }
      });
    });
    req.on('error', (err) => { if (got.length < count) reject(err); });
    req.end();
  });
}

test('the server streams the model, and a new one after the source reports a change', async () => {
  let revision = 1;
  let changed: (() => void) | undefined;
  const server = await startUiServer({
    read: async () => ({ ...buildModel(inputs()), revision }),
    watch: async (onChange) => { changed = onChange; return { async stop() { changed = undefined; } }; },
  }, { host: '127.0.0.1', port: 0 });
  try {
    const stream = models(server.url, 2);
    const page = await fetch(server.url);
    assert.match(await page.text(), /<script src="\/app\.js">/);
    assert.equal((await fetch(`${server.url}app.js`)).status, 200);
    // The stream's first model is sent on connect; the change comes once the client is connected.
    const first = await fetch(`${server.url}api/model`).then((r) => r.json()) as UiModel;
    assert.equal(first.revision, 1);
    revision = 2;
    const seen = new Promise<void>((resolve) => { const t = setInterval(() => { changed?.(); }, 50); void stream.then(() => { clearInterval(t); resolve(); }); });
    await seen;
    assert.deepEqual((await stream).map((m) => m.revision), [1, 2]);
  } finally { await server.close(); }
});
