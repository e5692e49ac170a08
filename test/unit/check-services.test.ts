// The check's service rules as data: who probes which Service, and what a pass needs (every endpoint
// reached, the client's own IP where no NAT is due, a fast refusal, hairpin landing on itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeServices, planServiceProbes, spreadProbes, type CheckService, type ServiceCheckInputs, type ServiceProbe } from '../../src/check/services.js';
import { checkServices } from '../../src/check/inputs.js';
import type { ProbeResult } from '../../src/check/model.js';
import type { EndpointSlice, Service } from '../../src/api/types.js';

const eps = [{ pod: 'd/w1', ip: '10.244.1.5', node: 'n1' }, { pod: 'd/w2', ip: '10.244.2.5', node: 'n2' }];
const web: CheckService = {
  id: 'd/web', clusterIP: '10.96.0.10', type: 'NodePort', internalLocal: false, externalLocal: false, sticky: false,
  ports: [{ name: '', protocol: 'tcp', port: 80, nodePort: 30080 }], endpoints: new Map([['', eps]]),
};
const empty: CheckService = { ...web, id: 'd/empty', clusterIP: '10.96.0.11', type: 'ClusterIP', ports: [{ name: '', protocol: 'udp', port: 53 }], endpoints: new Map([['', []]]) };

const inputs = (services: CheckService[]): ServiceCheckInputs => ({
  services,
  clientPods: [
    { label: 'd/w1', node: 'n1', netns: 'p-w1', ip: '10.244.1.5' },
    { label: 'd/c1', node: 'n1', netns: 'p-c1', ip: '10.244.1.9' },
    { label: 'd/c2', node: 'n2', netns: 'p-c2', ip: '10.244.2.9' },
  ],
  nodes: [{ name: 'n1', nodeIP: '10.100.0.11', netns: 'n1' }, { name: 'n2', nodeIP: '10.100.0.12', netns: 'n2' }],
  podNetns: new Map([['d/w1', 'p-w1'], ['d/w2', 'p-w2'], ['d/c1', 'p-c1'], ['d/c2', 'p-c2']]),
  external: { netns: 'ext', ip: '203.0.113.10' },
});

/** Answers every probe as a healthy proxy would: round robin over the allowed backends. */
function answer(probes: ServiceProbe[], tweak: (p: ServiceProbe, r: ProbeResult) => ProbeResult = (_p, r) => r): ProbeResult[] {
  const turn = new Map<string, number>();
  return probes.map((p) => {
    if (p.expectRefused) return tweak(p, { id: p.id, ok: false, error: 'ECONNREFUSED', ms: 3 });
    const i = turn.get(p.group) ?? 0;
    turn.set(p.group, i + 1);
    const servers = p.expectServers!;
    const server = p.expectSelf && i === 0 ? p.expectSelf : servers[i % servers.length];
    return tweak(p, { id: p.id, ok: true, server, client: p.expectClient ?? '10.100.0.11', ms: 2 });
  });
}

test('plan: clients are pods that are not endpoints, one per node, and every node; hairpin from an endpoint; NodePort from outside; refusals', () => {
  const probes = planServiceProbes(inputs([web, empty]), 100);
  const groups = (rule: number) => [...new Set(probes.filter((p) => p.rule === rule).map((p) => p.group))];
  assert.deepEqual(groups(7), [
    'd/web 10.96.0.10:80/tcp from d/c1', 'd/web 10.96.0.10:80/tcp from d/c2',
    'd/web 10.96.0.10:80/tcp from node n1', 'd/web 10.96.0.10:80/tcp from node n2']);
  assert.equal(probes.filter((p) => p.group === 'd/web 10.96.0.10:80/tcp from d/c1').length, spreadProbes(2));
  assert.deepEqual(groups(9), ['d/web 10.96.0.10:80/tcp from its endpoint d/w1', 'd/web 10.96.0.10:80/tcp from its endpoint d/w2']);
  assert.deepEqual(groups(8), ['d/web NodePort 10.100.0.11:30080/tcp', 'd/web NodePort 10.100.0.12:30080/tcp']);
  assert.deepEqual(groups(10), ['d/empty 10.96.0.11:53/udp from d/w1', 'd/empty 10.96.0.11:53/udp from node n1']);
  assert.equal(probes[0].id, 100);
  assert.deepEqual(judgeServices(probes, answer(probes), true).map((r) => r.status), ['pass', 'pass', 'pass', 'pass']);
});

test('judge: an endpoint never reached, a translated pod client, a slow refusal, or no hairpin each fail their rule and say which', () => {
  const probes = planServiceProbes(inputs([web, empty]), 0);
  const [r7] = judgeServices(probes, answer(probes, (p, r) => (p.rule === 7 && p.group.endsWith('from d/c2') ? { ...r, server: 'd/w1' } : r)), true);
  assert.deepEqual(r7.failures, [`d/web 10.96.0.10:80/tcp from d/c2: ${spreadProbes(2)} probes never reached d/w2`]);
  const nat = judgeServices(probes, answer(probes, (p, r) => (p.rule === 7 && p.expectClient ? { ...r, client: '10.100.0.11' } : r)), true)[0];
  assert.match(nat.failures[0], /from d\/c1: the backend saw 10\.100\.0\.11, expected 10\.244\.1\.9/);
  const slow = judgeServices(probes, answer(probes, (p, r) => (p.expectRefused ? { ...r, ms: 1500 } : r)), true)[3];
  assert.match(slow.failures[0], /refused after 1500 ms, expected within 1000 ms/);
  const hang = judgeServices(probes, answer(probes, (p, r) => (p.expectRefused ? { ...r, error: 'timeout after 2000 ms', ms: 2000 } : r)), true)[3];
  assert.match(hang.failures[0], /timeout after 2000 ms, expected ECONNREFUSED/);
  const noSelf = judgeServices(probes, answer(probes, (p, r) => (p.rule === 9 && r.server === p.expectSelf ? { ...r, server: p.expectServers!.find((s) => s !== p.expectSelf) } : r)), true)[2];
  assert.match(noSelf.failures[0], /never landed on the pod itself/);
  assert.deepEqual(judgeServices([], [], false).map((r) => [r.status, r.evidence[0]]), [['skip', 'no Services'], ['skip', 'no Services'], ['skip', 'no Services'], ['skip', 'no Services']]);
});

test('plan: Local policies probe only where endpoints are local, and expect the outside client\'s own address', () => {
  const local: CheckService = { ...web, internalLocal: true, externalLocal: true };
  const probes = planServiceProbes(inputs([local]), 0);
  const r8 = probes.filter((p) => p.rule === 8);
  assert.deepEqual([...new Set(r8.map((p) => `${p.host} ${p.expectServers!.join()} ${p.expectClient}`))], ['10.100.0.11 d/w1 203.0.113.10', '10.100.0.12 d/w2 203.0.113.10']);
  assert.deepEqual([...new Set(probes.filter((p) => p.rule === 7).map((p) => `${p.clientLabel}: ${p.expectServers!.join()}`))], ['d/c1: d/w1', 'd/c2: d/w2', 'node n1: d/w1', 'node n2: d/w2']);
  assert.equal(probes.filter((p) => p.rule === 9).length, 0, 'hairpin needs Cluster policy');
});

test('checkServices: ready endpoints per port name from the slices; headless and selector-less Services left out', () => {
  const svc = (name: string, spec: Partial<Service['spec']>): Service => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'd' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.9', selector: { app: name }, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', ...spec } });
  const slice: EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', metadata: { name: 'a-x', namespace: 'd', labels: { 'kubernetes.io/service-name': 'a' } },
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: [
      { addresses: ['10.244.1.5'], nodeName: 'n1', conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', namespace: 'd', name: 'w1' } },
      { addresses: ['10.244.1.6'], nodeName: 'n1', conditions: { ready: false, serving: false, terminating: false }, targetRef: { kind: 'Pod', namespace: 'd', name: 'w2' } },
    ],
  };
  const out = checkServices([svc('a', {}), svc('h', { clusterIP: 'None' }), svc('manual', { selector: undefined })], [slice]);
  assert.deepEqual(out.map((s) => [s.id, [...s.endpoints.get('http')!].map((e) => e.pod)]), [['d/a', ['d/w1']]]);
});

test('the check waits for each node\'s proxy to hold what the proxy renders for it: a ClusterIP with its ready endpoints\' count', async () => {
  const { wantedServiceElements } = await import('../../src/check/proxies.js');
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'demo' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 8080 }],
      sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' } } as Service;
  const ep = (ip: string, node: string, ready = true) => ({ addresses: [ip], nodeName: node, conditions: { ready, serving: ready, terminating: false } });
  const slice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-x', namespace: 'demo', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4', ports: [{ name: '', protocol: 'TCP', port: 8080 }], endpoints: [ep('10.244.1.2', 'node-1'), ep('10.244.2.2', 'node-2'), ep('10.244.2.3', 'node-2', false)] } as EndpointSlice;
  const nodes = [{ name: 'node-1', nodeIP: '10.100.0.11', podCIDRs: [], netns: 'n1' }, { name: 'node-2', nodeIP: '10.100.0.12', podCIDRs: [], netns: 'n2' }];
  const want = wantedServiceElements(nodes, [svc], [slice]);
  assert.deepEqual(want.get('node-1'), ['10.96.0.10 . tcp . 80 : goto pick-2']);
  assert.deepEqual(want.get('node-2'), ['10.96.0.10 . tcp . 80 : goto pick-2']);
});
