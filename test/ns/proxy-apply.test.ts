// The proxy applier against the real nft in a fresh namespace: the first sync builds the table, a sync
// with nothing new writes nothing, one changed endpoint is a couple of element operations, a restarted
// applier adopts the table as it is, and a table that is not ours (or too few pick chains) is rebuilt.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestScope } from '../helpers/scope.js';
import { Netns } from '../../src/kernel/netns.js';
import { ProxyApplier, parseListing } from '../../src/dataplane/proxy/apply.js';
import { renderProxy, PROXY_MAPS } from '../../src/dataplane/proxy/render.js';
import { ProxyState } from '../../src/dataplane/proxy/state.js';
import { PROXY_LAYOUTS } from '../../src/dataplane/proxy/skeleton.js';
import { readSetElements } from '../../src/kernel/nft-elements.js';
import type { EndpointSlice, Service } from '../../src/api/types.js';

const scope = new TestScope('pxa');
after(() => scope.cleanupSync());
const CIDRS = { clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/16' };

function cluster(endpoints: number, opts: { affinity?: number } = {}): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = Array.from({ length: 20 }, (_, i) => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' },
    spec: {
      type: i % 2 ? 'NodePort' : 'ClusterIP', clusterIP: `10.96.1.${i + 1}`, selector: { app: `s${i}` }, sessionAffinity: opts.affinity && i === 0 ? 'ClientIP' : 'None',
      ...(opts.affinity && i === 0 ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: opts.affinity } } } : {}),
      internalTrafficPolicy: 'Cluster', ...(i % 2 ? { externalTrafficPolicy: 'Cluster' as const } : {}),
      ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, ...(i % 2 ? { nodePort: 30000 + i } : {}) }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }].map((p, j) => (j === 0 ? { ...p, name: 'web' } : p)) as Service['spec']['ports'],
    },
  }));
  const slices: EndpointSlice[] = services.map((s, i) => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${s.metadata.name}-x`, namespace: 'default', labels: { 'kubernetes.io/service-name': s.metadata.name } },
    ports: [{ name: 'web', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }],
    endpoints: Array.from({ length: i === 0 ? endpoints : 3 }, (_, e) => ({ addresses: [`10.244.${e}.${i + 10}`], nodeName: `node-${e}`, conditions: { ready: true, serving: true, terminating: false } })),
  }));
  return { services, slices };
}

const listing = (netns: string) => execFileSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'table', 'ip', 'flatnet-proxy'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('proxy applier: build, no-op, small diffs, adoption by a restarted applier, rebuild when chains run short', async () => {
  const netns = scope.netns('p');
  const ns = new Netns(`/run/netns/${netns}`);
  const applier = new ProxyApplier(ns, CIDRS);
  const plan = renderProxy({ nodeName: 'node-1', nodeIPs: ['10.100.0.11'], ...cluster(3) });

  const first = await applier.sync(plan);
  assert.equal(first.rebuilt, true);
  const kernel = parseListing(listing(netns)).elements;
  for (const m of PROXY_MAPS) assert.deepEqual(new Map([...kernel[m]].sort()), new Map([...plan.elements[m]].sort()), `map ${m} holds the plan`);

  assert.deepEqual(await applier.sync(plan), { rebuilt: false, operations: 0, flushed: 0 }, 'nothing new: nothing written');

  // s0 loses an endpoint: its service verdict changes (pick-3 -> pick-2), index 2 goes, ports x2 (tcp, udp).
  const fewer = renderProxy({ nodeName: 'node-1', nodeIPs: ['10.100.0.11'], ...cluster(2) });
  const r = await applier.sync(fewer);
  assert.equal(r.rebuilt, false);
  assert.equal(r.operations, 2 * 2 + 2, JSON.stringify(r)); // 2 verdicts (delete + add) per port, 1 endpoint per port
  assert.deepEqual(new Map([...parseListing(listing(netns)).elements.endpoints].sort()), new Map([...fewer.elements.endpoints].sort()));

  // A new applier (an agent restarted) finds the table right and writes nothing.
  const restarted = new ProxyApplier(ns, CIDRS);
  assert.deepEqual(await restarted.sync(fewer), { rebuilt: false, operations: 0, flushed: 0 });

  // A new affinity timeout adds its chain to the live table; the table stays ours after that.
  const sticky = renderProxy({ nodeName: 'node-1', nodeIPs: ['10.100.0.11'], ...cluster(2, { affinity: 90 }) });
  const s = await restarted.sync(sticky);
  assert.equal(s.rebuilt, false);
  assert.match(listing(netns), /chain aff-90 \{/);
  assert.deepEqual(await new ProxyApplier(ns, CIDRS).sync(sticky), { rebuilt: false, operations: 0, flushed: 0 }, 'adopted with the added chain');

  // 100 endpoints need more than the 64 pick chains the table was built with: rebuilt with 128.
  const big = renderProxy({ nodeName: 'node-1', nodeIPs: ['10.100.0.11'], ...cluster(100) });
  assert.equal((await restarted.sync(big)).rebuilt, true);
  assert.match(listing(netns), /chain pick-128 \{/);
  assert.equal(parseListing(listing(netns)).elements.endpoints.size, big.elements.endpoints.size);
});

test('proxy applier: a table of that name that is not ours is replaced whole; cleanup removes it', async () => {
  const netns = scope.netns('q');
  execFileSync('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: 'table ip flatnet-proxy {\n\tchain stray {\n\t\ttype filter hook input priority 0; policy drop;\n\t}\n}\n' });
  const applier = new ProxyApplier(new Netns(`/run/netns/${netns}`), CIDRS);
  const plan = renderProxy({ nodeName: 'node-1', nodeIPs: ['10.100.0.11'], ...cluster(3) });
  assert.equal((await applier.sync(plan)).rebuilt, true);
  assert.doesNotMatch(listing(netns), /chain stray/);
  await applier.cleanup();
  assert.throws(() => listing(netns));
});

test('proxy applier fed one Service at a time: only the touched elements are written, and the kernel ends as a whole render', async () => {
  const netns = scope.netns('r');
  const ns = new Netns(`/run/netns/${netns}`);
  const node = { nodeName: 'node-1', nodeIPs: ['10.100.0.11'] };
  const state = new ProxyState(node);
  const { services, slices } = cluster(3, { affinity: 30 });
  const id = (o: Service | EndpointSlice) => `${o.metadata.namespace}/${o.metadata.name}`;
  for (const s of services) state.setService(id(s), s);
  for (const s of slices) state.setSlice(id(s), s);
  const applier = new ProxyApplier(ns, CIDRS);
  assert.equal((await applier.sync(state.plan, state.take())).rebuilt, true);

  // s4 loses its first endpoint, per port (tcp, udp): the verdict pick-3 -> pick-2 (delete + add), the
  // two that stay move down an index (delete + add each), the last index goes: 7.
  const s4 = slices[4];
  state.setSlice(id(s4), { ...s4, endpoints: s4.endpoints.slice(1) });
  const changes = state.take();
  assert.equal(changes.full, false);
  const r = await applier.sync(state.plan, changes);
  assert.deepEqual(r, { rebuilt: false, operations: 2 * 7, flushed: 0 }, 'only s4\'s elements are written');

  // s2 goes, s0 gets a second affinity timeout's worth of change (its chain is added live).
  state.setService(id(services[2]), undefined);
  state.setService(id(services[0]), { ...services[0], spec: { ...services[0].spec, sessionAffinityConfig: { clientIP: { timeoutSeconds: 45 } } } });
  await applier.sync(state.plan, state.take());
  assert.match(listing(netns), /chain aff-45 \{/);

  const want = renderProxy({ ...node, services: services.filter((_, i) => i !== 2).map((s, i) => (i === 0 ? { ...s, spec: { ...s.spec, sessionAffinityConfig: { clientIP: { timeoutSeconds: 45 } } } } : s)), slices: slices.map((s, i) => (i === 4 ? { ...s, endpoints: s.endpoints.slice(1) } : s)) });
  const kernel = parseListing(listing(netns)).elements;
  for (const m of PROXY_MAPS) assert.deepEqual(new Map([...kernel[m]].sort()), new Map([...want.elements[m]].sort()), `map ${m} holds the whole render`);
  assert.deepEqual(await new ProxyApplier(ns, CIDRS).sync(want), { rebuilt: false, operations: 0, flushed: 0 }, 'a restarted applier finds nothing to change');
});

test('the netlink dump reads every map and set exactly as `nft list table` prints it, and a restart adopts through it', async () => {
  const netns = scope.netns('d');
  const ns = new Netns(`/run/netns/${netns}`);
  const c = cluster(3, { affinity: 30 });
  // Every kind of element: refuse (s5 has no endpoints), drop (s6 Local with none on this node), UDP, NodePorts.
  c.slices[5] = { ...c.slices[5], endpoints: [] };
  c.services[6] = { ...c.services[6], spec: { ...c.services[6].spec, internalTrafficPolicy: 'Local' } };
  c.slices[6] = { ...c.slices[6], endpoints: c.slices[6].endpoints.map((e) => ({ ...e, nodeName: 'node-9' })) };
  const plan = renderProxy({ nodeName: 'node-1', nodeIPs: ['10.100.0.11'], ...c });
  for (const [m, want] of [['no-endpoints', 'goto refuse'], ['no-endpoints', 'drop'], ['nodeport-no-endpoints', 'goto refuse'], ['affinity-timeouts', 'jump aff-30']] as const) {
    assert.ok([...plan.elements[m].values()].includes(want), `the fixture has ${m} → ${want}`);
  }
  await new ProxyApplier(ns, CIDRS).sync(plan);
  // The packet path fills the affinity map; two entries by hand, with their timeouts.
  execFileSync('ip', ['netns', 'exec', netns, 'nft', 'add', 'element', 'ip', 'flatnet-proxy', 'affinity',
    '{ 10.244.0.5 . 10.96.1.1 . tcp . 80 timeout 30s : 10.244.1.10 . 8080, 10.244.0.6 . 10.100.0.11 . udp . 30001 timeout 1m : 10.244.2.11 . 5353 }']);

  const listed = parseListing(listing(netns));
  const dumped = await readSetElements(ns, 'ip', 'flatnet-proxy', PROXY_LAYOUTS);
  assert.ok(dumped, 'flatnet-nft-dump ran');
  for (const m of PROXY_MAPS) {
    assert.ok(listed.elements[m].size > 0, `${m} has elements to compare`);
    assert.deepEqual(new Map([...dumped.get(m)!].sort()), new Map([...listed.elements[m]].sort()), `map ${m}`);
  }
  assert.equal(listed.affinity.size, 2);
  assert.deepEqual(new Map([...dumped.get('affinity')!].sort()), new Map([...listed.affinity].sort()), 'map affinity');
  assert.equal(await readSetElements(ns, 'ip', 'no-such-table', { services: PROXY_LAYOUTS.services }), undefined, 'a missing table reads as undefined');

  // A restarted applier reads the table this way and writes nothing; one element changed behind its back is put right.
  assert.deepEqual(await new ProxyApplier(ns, CIDRS).sync(plan), { rebuilt: false, operations: 0, flushed: 0 });
  execFileSync('ip', ['netns', 'exec', netns, 'nft', 'delete', 'element', 'ip', 'flatnet-proxy', 'endpoints', '{ 10.96.1.3 . tcp . 80 . 1 }']);
  assert.deepEqual(await new ProxyApplier(ns, CIDRS).sync(plan), { rebuilt: false, operations: 1, flushed: 0 });
  assert.deepEqual(new Map([...parseListing(listing(netns)).elements.endpoints].sort()), new Map([...plan.elements.endpoints].sort()));
});
