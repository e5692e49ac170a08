// Services on the memory store: manifest checks, ClusterIP and NodePort allocation at apply (requested
// ones honoured or refused, with nothing stored), release on delete, and EndpointSlices that follow
// the pods a Service selects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { ManualClock } from '../../src/store/clock.js';
import { applyObjects, ApplyError, deleteObjects } from '../../src/api/apply.js';
import { parseManifests, ManifestError } from '../../src/api/manifest.js';
import { CLUSTER_CONFIG_KEY, CLUSTER_IP_PREFIX, ENDPOINTSLICE_PREFIX, NODE_PORT_PREFIX, objectKey } from '../../src/api/keys.js';
import { formatTable } from '../../src/api/format.js';
import type { EndpointSlice, Pod, Service } from '../../src/api/types.js';
import { allocateClusterIP, allocateNodePort, clusterIPProblem } from '../../src/controller/service-ips.js';
import { desiredSlices } from '../../src/controller/endpoints.js';
import { startController } from '../../src/controller/controller.js';

const SVC = (name: string, spec: string) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: default }\nspec:\n${spec}\n`;
const WEB = SVC('web', '  selector: { app: web }\n  ports: [{ port: 80, targetPort: 8080 }]');
const parse = (...docs: string[]) => parseManifests(docs.join('---\n'), 'svc.yaml');

async function cluster(config: object = {}): Promise<MemoryStore> {
  const store = new MemoryStore({ clock: new ManualClock() });
  await store.put(objectKey('Namespace', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
  await store.put(CLUSTER_CONFIG_KEY, JSON.stringify(config));
  return store;
}
const service = async (store: MemoryStore, name: string) => JSON.parse((await store.get(objectKey('Service', name, 'default')))!.value) as Service;
const keys = async (store: MemoryStore, prefix: string) => (await store.list(prefix)).items.map((kv) => `${kv.key.slice(prefix.length)}=${kv.value}`);

test('manifest: a Service defaults like Kubernetes; bad fields are named with the value', () => {
  const [s] = parse(WEB) as Service[];
  assert.deepEqual(s.spec, { type: 'ClusterIP', ports: [{ protocol: 'TCP', port: 80, targetPort: 8080 }], sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', selector: { app: 'web' } });
  const [np] = parse(SVC('np', '  type: NodePort\n  sessionAffinity: ClientIP\n  ports: [{ name: http, port: 80, targetPort: http, nodePort: 30080 }, { name: dns, port: 53, protocol: UDP }]')) as Service[];
  assert.equal(np.spec.externalTrafficPolicy, 'Cluster');
  assert.deepEqual(np.spec.sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
  assert.deepEqual(np.spec.ports.map((p) => [p.name, p.targetPort, p.nodePort, p.protocol]), [['http', 'http', 30080, 'TCP'], ['dns', 53, undefined, 'UDP']]);

  const refused: Array<[string, RegExp]> = [
    [SVC('a', '  ports: [{ port: 80, protocol: SCTP }]'), /document 1 \(Service "a"\): spec\.ports\[0\]\.protocol: "SCTP" is not supported/],
    [SVC('a', '  ports: [{ port: 70000 }]'), /spec\.ports\[0\]\.port: 70000 is not a port/],
    [SVC('a', '  ports: [{ port: 80 }, { port: 81 }]'), /spec\.ports\[0\]\.name: is required when a Service has more than one port/],
    [SVC('a', '  clusterIP: 10.96.0.300\n  ports: [{ port: 80 }]'), /spec\.clusterIP: "10\.96\.0\.300" is not an IPv4 address/],
    [SVC('a', '  ports: [{ port: 80, nodePort: 30001 }]'), /spec\.ports\[0\]\.nodePort: 30001: only a Service of type NodePort has node ports/],
    [SVC('a', '  type: LoadBalancer\n  ports: [{ port: 80 }]'), /spec\.type: "LoadBalancer" is not supported/],
    [SVC('a', '  externalTrafficPolicy: Local\n  ports: [{ port: 80 }]'), /spec\.externalTrafficPolicy: "Local": only a Service of type NodePort/],
    [SVC('a', '  sessionAffinity: ClientIP\n  sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } }\n  ports: [{ port: 80 }]'), /timeoutSeconds: 0 is not a whole number of seconds from 1 to 86400/],
    [SVC('a', '  selector: { app: web }'), /spec\.ports: is required/],
    [SVC('a', '  ports: [{ port: 80, targetPort: "Bad_Name" }]'), /spec\.ports\[0\]\.targetPort: "Bad_Name" is not a port name/],
  ];
  for (const [text, expected] of refused) assert.throws(() => parse(text), (e: unknown) => e instanceof ManifestError && expected.test(e.message), text);
  // Headless needs no ports.
  assert.equal((parse(SVC('h', '  clusterIP: None\n  selector: { app: web }'))[0] as Service).spec.clusterIP, 'None');
});

test('allocators: ClusterIPs stay inside the CIDR, skip network, .1 and broadcast, and wrap past taken ones', () => {
  assert.equal(allocateClusterIP('10.96.0.0/29', new Set(), () => 0), '10.96.0.2');
  assert.equal(allocateClusterIP('10.96.0.0/29', new Set(['10.96.0.6']), (n) => n - 1), '10.96.0.2');
  const all = new Set(['10.96.0.2', '10.96.0.3', '10.96.0.4', '10.96.0.5', '10.96.0.6']);
  assert.equal(allocateClusterIP('10.96.0.0/29', all, () => 3), undefined);
  assert.equal(clusterIPProblem('10.97.0.1', '10.96.0.0/16'), '"10.97.0.1" is not in the service CIDR 10.96.0.0/16');
  assert.match(clusterIPProblem('10.96.255.255', '10.96.0.0/16')!, /broadcast/);
  assert.equal(clusterIPProblem('10.96.0.1', '10.96.0.0/16'), undefined);
  assert.equal(allocateNodePort({ min: 30000, max: 30002 }, new Set([30001, 30002]), () => 1), 30000);
  assert.equal(allocateNodePort({ min: 30000, max: 30001 }, new Set([30000, 30001]), () => 0), undefined);
});

test('apply: a ClusterIP and node ports are allocated and held by keys; requested ones are honoured', async () => {
  const store = await cluster();
  const r = await applyObjects(store, parse(WEB, SVC('np', '  type: NodePort\n  selector: { app: web }\n  clusterIP: 10.96.5.5\n  ports: [{ port: 80, nodePort: 30080 }, { name: b, port: 81 }]'.replace('[{ port: 80,', '[{ name: a, port: 80,'))));
  assert.deepEqual(r.map((x) => x.line), ['service/web created', 'service/np created']);
  const web = await service(store, 'web');
  assert.ok(clusterIPProblem(web.spec.clusterIP!, '10.96.0.0/12') === undefined, web.spec.clusterIP);
  assert.deepEqual(web.spec.clusterIPs, [web.spec.clusterIP]);
  const np = await service(store, 'np');
  assert.equal(np.spec.clusterIP, '10.96.5.5');
  assert.equal(np.spec.ports[0].nodePort, 30080);
  const other = np.spec.ports[1].nodePort!;
  assert.ok(other >= 30000 && other <= 32767 && other !== 30080);
  assert.deepEqual((await keys(store, CLUSTER_IP_PREFIX)).sort(), [`${web.spec.clusterIP}=default/web`, '10.96.5.5=default/np'].sort());
  assert.deepEqual((await keys(store, NODE_PORT_PREFIX)).sort(), [`30080=default/np`, `${other}=default/np`].sort());
  // Re-applying keeps every address: nothing changes.
  assert.deepEqual((await applyObjects(store, parse(WEB)))[0].line, 'service/web unchanged');
  assert.equal((await service(store, 'web')).spec.clusterIP, web.spec.clusterIP);

  const table = formatTable('Service', [np, web], { wide: true, allNamespaces: false, now: Date.now() });
  assert.match(table, new RegExp(`np\\s+NodePort\\s+10\\.96\\.5\\.5\\s+<none>\\s+80:30080/TCP,81:${other}/TCP\\s+\\S+\\s+app=web`));
});

test('apply: a taken ClusterIP or NodePort, or one out of range, is refused and nothing of the apply is stored', async () => {
  const store = await cluster({ serviceCIDR: '10.96.0.0/24' });
  await applyObjects(store, parse(SVC('first', '  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{ port: 80, nodePort: 30080 }]')));
  const before = (await store.list('/')).items.length;
  const attempts: Array<[string, RegExp]> = [
    [SVC('second', '  clusterIP: 10.96.0.10\n  ports: [{ port: 80 }]'), /Service "default\/second": spec\.clusterIP: 10\.96\.0\.10 is already allocated \(to Service default\/first\)/],
    [SVC('second', '  type: NodePort\n  ports: [{ port: 80, nodePort: 30080 }]'), /spec\.ports\[0\]\.nodePort: 30080 is already allocated \(to Service default\/first\)/],
    [SVC('second', '  clusterIP: 10.96.1.10\n  ports: [{ port: 80 }]'), /"10\.96\.1\.10" is not in the service CIDR 10\.96\.0\.0\/24/],
    [SVC('second', '  type: NodePort\n  ports: [{ port: 80, nodePort: 8080 }]'), /8080 is outside the node port range 30000-32767/],
    [SVC('first', '  type: NodePort\n  clusterIP: 10.96.0.11\n  ports: [{ port: 80, nodePort: 30080 }]'), /spec\.clusterIP is immutable/],
  ];
  for (const [text, expected] of attempts) {
    // Each refused Service rides with a valid one: the valid one must not be stored either.
    await assert.rejects(applyObjects(store, parse(SVC('innocent', '  ports: [{ port: 80 }]'), text)), (e: unknown) => e instanceof ApplyError && expected.test(e.message));
    assert.equal((await store.list('/')).items.length, before, `nothing stored after: ${expected}`);
  }
});

test('apply: headless gets no ClusterIP; type changes release node ports; delete frees the addresses for reuse', async () => {
  const store = await cluster();
  await applyObjects(store, parse(SVC('h', '  clusterIP: None\n  selector: { app: web }'), SVC('np', '  type: NodePort\n  clusterIP: 10.96.0.20\n  ports: [{ port: 80, nodePort: 30090 }]')));
  assert.deepEqual((await service(store, 'h')).spec.clusterIPs, ['None']);
  assert.deepEqual(await keys(store, CLUSTER_IP_PREFIX), ['10.96.0.20=default/np']);
  // NodePort -> ClusterIP: the node port goes, the ClusterIP stays.
  assert.equal((await applyObjects(store, parse(SVC('np', '  ports: [{ port: 80 }]'))))[0].line, 'service/np configured');
  assert.deepEqual(await keys(store, NODE_PORT_PREFIX), []);
  assert.equal((await service(store, 'np')).spec.clusterIP, '10.96.0.20');
  const d = await deleteObjects(store, parse(SVC('np', '  ports: [{ port: 80 }]')));
  assert.deepEqual(d.map((x) => x.line), ['service "np" deleted']);
  assert.deepEqual(await keys(store, CLUSTER_IP_PREFIX), []);
  await applyObjects(store, parse(SVC('again', '  clusterIP: 10.96.0.20\n  ports: [{ port: 80 }]')));
  assert.equal((await service(store, 'again')).spec.clusterIP, '10.96.0.20');
});

test('delete: a namespace takes its Services, their addresses and their EndpointSlices with it', async () => {
  const store = await cluster();
  const inDemo = (name: string, spec: string) => SVC(name, spec).replace('namespace: default', 'namespace: demo');
  await applyObjects(store, parse('apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n',
    inDemo('a', '  type: NodePort\n  selector: { app: a }\n  ports: [{ port: 80, nodePort: 30001 }]'), inDemo('b', '  selector: { app: b }\n  ports: [{ port: 80 }]')));
  for (const svc of ['a', 'b']) {
    const slice = desiredSlices(JSON.parse((await store.get(objectKey('Service', svc, 'demo')))!.value) as Service, [])[0];
    await store.put(objectKey('EndpointSlice', slice.metadata.name, 'demo'), JSON.stringify(slice));
  }
  assert.equal((await keys(store, CLUSTER_IP_PREFIX)).length, 2);
  const d = await deleteObjects(store, parse('apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n'));
  assert.deepEqual(d.map((x) => x.line), ['namespace "demo" deleted']);
  assert.deepEqual(await keys(store, CLUSTER_IP_PREFIX), []);
  assert.deepEqual(await keys(store, NODE_PORT_PREFIX), []);
  assert.deepEqual(await keys(store, ENDPOINTSLICE_PREFIX), []);
  assert.deepEqual(await keys(store, '/registry/services/'), []);
});

const pod = (name: string, ip: string | undefined, opts: { labels?: Record<string, string>; ready?: boolean; node?: string; ports?: Pod['spec']['containers'][0]['ports']; ns?: string } = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: opts.ns ?? 'default', uid: `uid-${name}`, labels: opts.labels ?? { app: 'web' } },
  spec: { nodeName: opts.node ?? 'node-1', containers: [{ name: 'c', ports: opts.ports }] },
  status: { phase: ip ? 'Running' : 'Pending', ...(ip ? { podIP: ip } : {}), conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
});

test('endpoint slices: selected pods with an IP, ready from the pod condition, named ports resolved per pod', () => {
  const [web] = parse(SVC('web', '  selector: { app: web }\n  ports: [{ name: http, port: 80, targetPort: http }]')) as Service[];
  web.metadata.uid = 'svc-uid';
  const pods = [
    pod('a', '10.244.1.5', { ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }], node: 'node-2' }),
    pod('b', '10.244.0.7', { ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }], ready: false }),
    pod('c', '10.244.0.9', { ports: [{ name: 'http', containerPort: 9090, protocol: 'TCP' }] }),
    pod('d', '10.244.0.10', { ports: [] }), // names no "http": serves nothing of this Service
    pod('e', undefined, { ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }),
    pod('f', '10.244.0.11', { labels: { app: 'other' } }),
    pod('g', '10.244.0.12', { ns: 'elsewhere', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }),
  ];
  const slices = desiredSlices(web, pods);
  assert.equal(slices.length, 2);
  const s8080 = slices.find((s) => s.ports[0].port === 8080)!;
  assert.deepEqual(s8080.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);
  assert.deepEqual(s8080.endpoints.map((e) => [e.addresses[0], e.conditions.ready, e.nodeName, e.targetRef?.name]),
    [['10.244.0.7', false, 'node-1', 'b'], ['10.244.1.5', true, 'node-2', 'a']]);
  assert.deepEqual(slices.find((s) => s.ports[0].port === 9090)!.endpoints.map((e) => e.addresses[0]), ['10.244.0.9']);
  assert.equal(s8080.metadata.labels!['kubernetes.io/service-name'], 'web');
  assert.deepEqual(s8080.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid' }]);
  // No selector: not managed. Selecting nothing: one empty slice.
  assert.deepEqual(desiredSlices(parse(SVC('x', '  ports: [{ port: 80 }]'))[0] as Service, pods), []);
  const empty = desiredSlices(parse(SVC('y', '  selector: { app: none }\n  ports: [{ port: 80, targetPort: 8080 }]'))[0] as Service, pods);
  assert.deepEqual(empty.map((s) => [s.endpoints.length, s.ports]), [[0, [{ name: '', protocol: 'TCP', port: 8080 }]]]);
});

test('controller: EndpointSlices follow pods coming, going and changing labels; deleting the Service deletes them', async () => {
  const store = await cluster();
  const controller = await startController({ store, identity: 't', log: () => undefined, resyncMs: 0 });
  const slices = async () => (await store.list(ENDPOINTSLICE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as EndpointSlice);
  const addresses = async () => (await slices()).flatMap((s) => s.endpoints.map((e) => e.addresses[0])).sort();
  const until = async (what: string, cond: () => Promise<boolean>) => {
    const deadline = Date.now() + 3000;
    while (!(await cond())) { if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(await slices())}`); await new Promise((r) => setTimeout(r, 10)); }
  };
  try {
    // Pods on a node without a Node object would be garbage-collected.
    for (const n of ['node-1', 'node-2']) await store.put(objectKey('Node', n), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n }, spec: {} }));
    await applyObjects(store, parse(WEB));
    await until('an empty slice', async () => (await slices()).length === 1 && (await addresses()).length === 0);
    const put = (p: Pod) => store.put(objectKey('Pod', p.metadata.name, 'default'), JSON.stringify(p));
    await put(pod('a', '10.244.0.5'));
    await put(pod('b', '10.244.1.5', { node: 'node-2' }));
    await until('two endpoints', async () => (await addresses()).join() === '10.244.0.5,10.244.1.5');
    assert.deepEqual((await slices())[0].ports, [{ name: '', protocol: 'TCP', port: 8080 }]);
    await put(pod('b', '10.244.1.5', { node: 'node-2', labels: { app: 'moved' } }));
    await until('b gone after its label changed', async () => (await addresses()).join() === '10.244.0.5');
    await store.delete(objectKey('Pod', 'a', 'default'));
    await until('no endpoints after the pod is deleted', async () => (await addresses()).length === 0 && (await slices()).length === 1);
    await deleteObjects(store, parse(WEB));
    await until('no slice after the Service is deleted', async () => (await slices()).length === 0);
  } finally {
    await controller.stop();
    await store.close();
  }
});
