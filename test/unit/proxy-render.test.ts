// The proxy as data: which elements a set of Services and EndpointSlices gives a node, and the helpers
// that read a listing back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderProxy } from '../../src/dataplane/proxy/render.js';
import { nftDuration, renderSkeleton } from '../../src/dataplane/proxy/skeleton.js';
import { parseListing, pickChainsFor, sameBlocks } from '../../src/dataplane/proxy/apply.js';
import type { EndpointPort, EndpointSlice, Service } from '../../src/api/types.js';

function svc(name: string, spec: Partial<Service['spec']>): Service {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', ports: [{ protocol: 'TCP', port: 80, targetPort: 8080 }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', selector: { app: name }, ...spec },
  };
}

function slice(service: string, eps: Array<[string, string, boolean?]>, ports: EndpointPort[] = [{ name: '', protocol: 'TCP', port: 8080 }]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports,
    metadata: { name: `${service}-abcde`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    endpoints: eps.map(([ip, node, ready = true]) => ({ addresses: [ip], nodeName: node, conditions: { ready, serving: ready, terminating: false } })),
  };
}

const entries = (m: Map<string, string>) => [...m].map(([k, v]) => (v ? `${k} : ${v}` : k));

test('ClusterIP: ready endpoints by address, one pick chain per count, not-ready and headless left out', () => {
  const plan = renderProxy({
    nodeName: 'node-1', nodeIPs: ['10.100.0.11'],
    services: [svc('web', { clusterIP: '10.96.0.10' }), svc('head', { clusterIP: 'None' })],
    slices: [slice('web', [['10.244.1.5', 'node-2'], ['10.244.0.7', 'node-1'], ['10.244.2.2', 'node-3', false]]), slice('head', [['10.244.0.9', 'node-1']])],
  });
  assert.deepEqual(entries(plan.elements.services), ['10.96.0.10 . tcp . 80 : goto pick-2']);
  assert.deepEqual(entries(plan.elements.endpoints), ['10.96.0.10 . tcp . 80 . 0 : 10.244.0.7 . 8080', '10.96.0.10 . tcp . 80 . 1 : 10.244.1.5 . 8080']);
  assert.deepEqual([...plan.counts], [2]);
  assert.deepEqual(entries(plan.elements.hairpin), ['10.244.0.7 . 10.244.0.7'], 'only this node\'s endpoints can hairpin here');
  assert.equal(plan.elements['no-endpoints'].size, 0);
});

test('no endpoints: refused; internalTrafficPolicy Local with none on this node: dropped', () => {
  const plan = renderProxy({
    nodeName: 'node-1', nodeIPs: ['10.100.0.11'],
    services: [svc('empty', { clusterIP: '10.96.0.11' }), svc('local', { clusterIP: '10.96.0.12', internalTrafficPolicy: 'Local' }), svc('mine', { clusterIP: '10.96.0.13', internalTrafficPolicy: 'Local' })],
    slices: [slice('empty', []), slice('local', [['10.244.1.5', 'node-2']]), slice('mine', [['10.244.1.6', 'node-2'], ['10.244.0.8', 'node-1']])],
  });
  assert.deepEqual(entries(plan.elements['no-endpoints']).sort(), ['10.96.0.11 . tcp . 80 : goto refuse', '10.96.0.12 . tcp . 80 : drop']);
  assert.deepEqual(entries(plan.elements.endpoints), ['10.96.0.13 . tcp . 80 . 0 : 10.244.0.8 . 8080']);
});

test('NodePort: Cluster policy masquerades and spreads; Local keeps the client and only local endpoints, or drops', () => {
  const np = (name: string, nodePort: number, externalTrafficPolicy: 'Cluster' | 'Local') =>
    svc(name, { type: 'NodePort', clusterIP: `10.96.0.${nodePort - 30000}`, externalTrafficPolicy, ports: [{ protocol: 'UDP', port: 53, targetPort: 5353, nodePort }] });
  const eps: Array<[string, string]> = [['10.244.1.5', 'node-2'], ['10.244.0.7', 'node-1']];
  const udp = [{ name: '', protocol: 'UDP' as const, port: 5353 }];
  const plan = renderProxy({
    nodeName: 'node-1', nodeIPs: ['10.100.0.11'],
    services: [np('c', 30001, 'Cluster'), np('l', 30002, 'Local'), np('far', 30003, 'Local')],
    slices: [slice('c', eps, udp), slice('l', eps, udp), slice('far', [['10.244.1.9', 'node-2']], udp)],
  });
  assert.deepEqual(entries(plan.elements.nodeports).sort(), ['udp . 30001 : goto np-pick-2', 'udp . 30002 : goto np-pick-1']);
  assert.deepEqual(entries(plan.elements['nodeport-endpoints']).sort(), [
    'udp . 30001 . 0 : 10.244.0.7 . 5353', 'udp . 30001 . 1 : 10.244.1.5 . 5353', 'udp . 30002 . 0 : 10.244.0.7 . 5353']);
  assert.deepEqual(entries(plan.elements['nodeport-masq']), ['udp . 30001']);
  assert.deepEqual(entries(plan.elements['nodeport-no-endpoints']), ['udp . 30003 : drop']);
});

test('session affinity: the Service is remembered per client with its own timeout; named ports match by name', () => {
  const plan = renderProxy({
    nodeName: 'node-1', nodeIPs: ['10.100.0.11'],
    services: [svc('s', { clusterIP: '10.96.0.20', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 90 } },
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }, { name: 'admin', protocol: 'TCP', port: 81, targetPort: 'admin' }] })],
    slices: [slice('s', [['10.244.0.7', 'node-1']], [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'admin', protocol: 'TCP', port: 9090 }])],
  });
  assert.deepEqual(entries(plan.elements.endpoints).sort(), ['10.96.0.20 . tcp . 80 . 0 : 10.244.0.7 . 8080', '10.96.0.20 . tcp . 81 . 0 : 10.244.0.7 . 9090']);
  assert.deepEqual(entries(plan.elements['affinity-timeouts']).sort(), ['10.96.0.20 . tcp . 80 : jump aff-90', '10.96.0.20 . tcp . 81 : jump aff-90']);
  assert.deepEqual([...plan.affinityTimeouts], [90]);
});

test('NodePort session affinity is remembered per node address, beside the ClusterIP\'s', () => {
  const plan = renderProxy({
    nodeName: 'node-1', nodeIPs: ['10.100.0.11'],
    services: [svc('np', { type: 'NodePort', clusterIP: '10.96.0.30', externalTrafficPolicy: 'Cluster', sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30090 }] })],
    slices: [slice('np', [['10.244.0.7', 'node-1'], ['10.244.1.5', 'node-2']])],
  });
  assert.deepEqual(entries(plan.elements['affinity-timeouts']).sort(), ['10.100.0.11 . tcp . 30090 : jump aff-60', '10.96.0.30 . tcp . 80 : jump aff-60']);
  assert.deepEqual(entries(plan.elements['affinity-services']).sort(), ['10.100.0.11 . tcp . 30090', '10.96.0.30 . tcp . 80']);
});

test('listing helpers: nft durations, pick-chain sizes, blocks in any order, wrapped element lists', () => {
  assert.deepEqual([10800, 90, 600, 86400, 3661, 0].map(nftDuration), ['3h', '1m30s', '10m', '1d', '1h1m1s', '0s']);
  assert.deepEqual([1, 64, 65, 300].map(pickChainsFor), [64, 64, 128, 512]);
  const table = renderSkeleton({ maxCount: 2, affinityTimeouts: [90], clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/16' }, 'listing');
  const lines = table.trimEnd().split('\n');
  const blocks = lines.slice(1, -1).join('\n').split('\n\n');
  const shuffled = [lines[0], [...blocks].reverse().join('\n\n'), '}'].join('\n');
  assert.ok(sameBlocks(table, shuffled));
  assert.ok(!sameBlocks(table, table.replace('timeout 1m30s', 'timeout 1m31s')));
  const listing = table.replace('\t\ttypeof ip daddr . meta l4proto . th dport : verdict\n\t}\n\n\tmap endpoints',
    '\t\ttypeof ip daddr . meta l4proto . th dport : verdict\n\t\telements = { 10.96.0.1 . tcp . 80 : goto pick-1,\n\t\t\t     10.96.0.2 . udp . 53 : goto pick-2 }\n\t}\n\n\tmap endpoints')
    .replace('\t\tflags dynamic,timeout\n\t\ttimeout 3h\n', '\t\tflags dynamic,timeout\n\t\ttimeout 3h\n\t\telements = { 10.0.0.1 . 10.96.0.1 . tcp . 80 timeout 1m30s expires 1m2s : 10.244.0.7 . 8080 }\n');
  const parsed = parseListing(listing);
  assert.deepEqual(entries(parsed.elements.services), ['10.96.0.1 . tcp . 80 : goto pick-1', '10.96.0.2 . udp . 53 : goto pick-2']);
  assert.deepEqual([...parsed.affinity], [['10.0.0.1 . 10.96.0.1 . tcp . 80', '10.244.0.7 . 8080']]);
  assert.ok(sameBlocks(parsed.skeleton, table), 'the listing without elements is the skeleton');
});
