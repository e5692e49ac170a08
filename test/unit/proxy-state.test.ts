// The proxy kept current one Service at a time: after any sequence of changes it wants exactly what a
// whole render wants, and what it says it touched is enough for the applier to get there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROXY_MAPS, renderProxy, renderService, type ProxyMap, type ProxyPlan } from '../../src/dataplane/proxy/render.js';
import { ProxyState } from '../../src/dataplane/proxy/state.js';
import type { EndpointSlice, Service } from '../../src/api/types.js';

const NODE = { nodeName: 'node-1', nodeIPs: ['10.100.0.11'] };

/** A small deterministic random source, so a failing sequence can be replayed from its seed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

function service(i: number, r: () => number): Service {
  const nodePort = r() < 0.4;
  const sticky = r() < 0.3;
  const ports: Service['spec']['ports'] = [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http', ...(nodePort ? { nodePort: 30000 + i } : {}) }];
  if (r() < 0.3) ports.push({ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, ...(nodePort ? { nodePort: 31000 + i } : {}) });
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}`, namespace: i % 2 ? 'a' : 'b' },
    spec: {
      type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP: r() < 0.1 ? 'None' : `10.96.0.${i + 1}`, selector: { app: `svc-${i}` }, ports,
      sessionAffinity: sticky ? 'ClientIP' : 'None',
      ...(sticky ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: r() < 0.5 ? 60 : 600 } } } : {}),
      internalTrafficPolicy: r() < 0.2 ? 'Local' : 'Cluster', externalTrafficPolicy: r() < 0.3 ? 'Local' : 'Cluster',
    },
  };
}

function slice(i: number, part: number, r: () => number): EndpointSlice {
  // Pod addresses come from a small pool, so Services share endpoints (and hairpin addresses).
  const n = Math.floor(r() * 5);
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `svc-${i}-${part}`, namespace: i % 2 ? 'a' : 'b', labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }],
    endpoints: Array.from({ length: n }, () => {
      const ready = r() < 0.8;
      return { addresses: [`10.244.${Math.floor(r() * 3)}.${Math.floor(r() * 6) + 2}`], nodeName: `node-${Math.floor(r() * 3)}`, conditions: { ready, serving: ready, terminating: false } };
    }),
  };
}

const id = (o: Service | EndpointSlice) => `${o.metadata.namespace}/${o.metadata.name}`;
const sorted = (m: Map<string, string>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

function assertSamePlan(got: ProxyPlan, want: ProxyPlan, what: string): void {
  for (const m of PROXY_MAPS) assert.deepEqual(sorted(got.elements[m]), sorted(want.elements[m]), `${what}: map ${m}`);
  assert.deepEqual([...got.counts].sort(), [...want.counts].sort(), `${what}: pick chains`);
  assert.deepEqual([...got.affinityTimeouts].sort(), [...want.affinityTimeouts].sort(), `${what}: affinity timeouts`);
}

test('after every change, one Service at a time gives the whole render, and the touched keys carry every difference', () => {
  for (const seed of [1, 7, 42, 1234, 99991]) {
    const r = random(seed);
    const state = new ProxyState(NODE);
    const services = new Map<string, Service>();
    const slices = new Map<string, EndpointSlice>();
    // What an applier would hold if it only ever looked at the touched keys.
    const applied = Object.fromEntries(PROXY_MAPS.map((m) => [m, new Map<string, string>()])) as Record<ProxyMap, Map<string, string>>;
    for (let step = 0; step < 400; step++) {
      const i = Math.floor(r() * 12);
      const what = r();
      if (what < 0.3) {
        const s = service(i, r);
        services.set(id(s), s);
        state.setService(id(s), s);
      } else if (what < 0.4) {
        const key = `${i % 2 ? 'a' : 'b'}/svc-${i}`;
        services.delete(key);
        state.setService(key, undefined);
      } else if (what < 0.85) {
        const s = slice(i, Math.floor(r() * 2), r);
        slices.set(id(s), s);
        state.setSlice(id(s), s);
      } else if (what < 0.95) {
        const key = `${i % 2 ? 'a' : 'b'}/svc-${i}-${Math.floor(r() * 2)}`;
        slices.delete(key);
        state.setSlice(key, undefined);
      } else {
        // A slice relabelled to another Service: both Services change.
        const s = slice(i, 0, r);
        s.metadata.labels = { 'kubernetes.io/service-name': `svc-${(i + 2) % 12}` };
        slices.set(id(s), s);
        state.setSlice(id(s), s);
      }
      if (r() < 0.6) continue; // several changes may come before a sync
      const changes = state.take();
      const byId = (m: Map<string, Service | EndpointSlice>) => [...m.keys()].sort().map((k) => m.get(k)!);
      const want = renderProxy({ ...NODE, services: byId(services) as Service[], slices: byId(slices) as EndpointSlice[] });
      assertSamePlan(state.plan, want, `seed ${seed} step ${step}`);
      for (const m of PROXY_MAPS) {
        const keys = changes.full ? new Set([...applied[m].keys(), ...state.plan.elements[m].keys()]) : changes.touched[m];
        for (const k of keys) {
          const v = state.plan.elements[m].get(k);
          if (v === undefined) applied[m].delete(k);
          else applied[m].set(k, v);
        }
        assert.deepEqual(sorted(applied[m]), sorted(want.elements[m]), `seed ${seed} step ${step}: touched keys of ${m}`);
      }
    }
  }
});

test('one changed endpoint touches only its Service\'s keys; an unchanged take touches nothing', () => {
  const state = new ProxyState(NODE);
  const r = random(5);
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < 50; i++) {
    const s = service(i, random(i + 100));
    s.spec.clusterIP = `10.96.0.${i + 1}`; // none headless
    services.push(s);
    slices.push(slice(i, 0, r));
    state.setService(id(s), s);
    state.setSlice(id(slices[i]), slices[i]);
  }
  assert.equal(state.take().full, true, 'the first take renders everything');
  const quiet = state.take();
  assert.equal(quiet.full, false);
  assert.equal(PROXY_MAPS.reduce((n, m) => n + quiet.touched[m].size, 0), 0);

  const svc7 = services[7];
  const before = renderService(svc7, [slices[7]], NODE);
  const s = slice(7, 0, r);
  s.endpoints = [{ addresses: ['10.244.9.9'], nodeName: 'node-1', conditions: { ready: true, serving: true, terminating: false } }];
  state.setSlice(id(s), s);
  const one = state.take();
  assert.equal(one.full, false);
  const after = renderService(svc7, [s], NODE);
  const own = new Set([...before.elements, ...after.elements].map(([m, k]) => `${m} ${k}`));
  own.add('hairpin 10.244.9.9 . 10.244.9.9');
  const touched = PROXY_MAPS.flatMap((m) => [...one.touched[m]].map((k) => `${m} ${k}`));
  assert.ok(touched.length > 0);
  for (const t of touched) assert.ok(own.has(t) || t.startsWith('hairpin '), `touched ${t} belongs to svc-7`);
  assert.deepEqual(sorted(state.plan.elements.endpoints).filter(([k]) => k.startsWith('10.96.0.8 ')), [['10.96.0.8 . tcp . 80 . 0', '10.244.9.9 . 8080']]);
  assert.equal(state.plan.elements.hairpin.get('10.244.9.9 . 10.244.9.9'), '', 'a local endpoint can hairpin');
});

test('two Services claiming one ClusterIP (a hand-edited store): the one listed last wins, as in a whole render', () => {
  const state = new ProxyState(NODE);
  const mk = (ns: string, internalTrafficPolicy: 'Cluster' | 'Local'): Service => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: ns },
    spec: { type: 'ClusterIP', clusterIP: '10.96.3.3', ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }], sessionAffinity: 'None', internalTrafficPolicy, selector: {} },
  });
  const remote: EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ name: '', protocol: 'TCP', port: 80 }],
    metadata: { name: 'x-1', namespace: 'b', labels: { 'kubernetes.io/service-name': 'x' } },
    endpoints: [{ addresses: ['10.244.2.2'], nodeName: 'node-2', conditions: { ready: true, serving: true, terminating: false } }],
  };
  state.setService('a/x', mk('a', 'Cluster'));
  state.take();
  state.setService('b/x', mk('b', 'Local'));
  state.setSlice('b/x-1', remote);
  state.take();
  // b/x sorts after a/x; with a Local policy and its only endpoint elsewhere, it drops.
  assert.equal(state.plan.elements['no-endpoints'].get('10.96.3.3 . tcp . 80'), 'drop');
  state.setService('b/x', undefined);
  assert.equal(state.take().full, true, 'while a clash lasts the table is rendered whole');
  assert.equal(state.plan.elements['no-endpoints'].get('10.96.3.3 . tcp . 80'), 'goto refuse', 'a/x holds its address again');
  assert.equal(state.take().full, false, 'once the clash is gone, changes are incremental again');
});
