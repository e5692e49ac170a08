// The agent's wiring pieces without a kernel: the feature list and its switches, the --disable parser,
// the combined CNI hooks, a feature's loop, and the cluster view that waits for every listing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { ManualClock } from '../../src/store/clock.js';
import { NETWORKPOLICY_PREFIX, POD_PREFIX, objectKey } from '../../src/api/keys.js';
import { DEFAULT_CLUSTER_CONFIG } from '../../src/api/types.js';
import { Netns } from '../../src/kernel/netns.js';
import { ClusterView } from '../../src/agent/cluster-view.js';
import { buildFeatures, cniHooksOf, parseDisabledFeatures, FEATURES, OPTIONAL_FEATURES } from '../../src/agent/features/index.js';
import { loopFeature, type Feature, type NodeContext } from '../../src/agent/features/feature.js';
import type { CniResult } from '../../src/cni/types.js';
import { until } from '../helpers/until.js';

function context(view: ClusterView, log: string[] = []): NodeContext {
  return {
    ns: Netns.current(), nodeName: 'node-1', podCIDRs: ['10.244.1.0/24'], podMode: 'routed', config: DEFAULT_CLUSTER_CONFIG, view,
    underlay: { ifname: 'eth0', cidr: '192.168.0.2/24', nodeIP: '192.168.0.2', mtu: 1500 } as NodeContext['underlay'],
    resyncMs: 0, log: (m) => log.push(m),
  };
}

test('parseDisabledFeatures: a comma list of optional features, each turned off; anything else refused by name', () => {
  assert.deepEqual(parseDisabledFeatures(undefined), {});
  assert.deepEqual(parseDisabledFeatures(''), {});
  assert.deepEqual(parseDisabledFeatures('proxy, policy'), { proxy: false, policy: false });
  assert.deepEqual(parseDisabledFeatures('masquerade,'), { masquerade: false });
  assert.throws(() => parseDisabledFeatures('proxy,routes'), /cannot disable "routes": the features that can be turned off are proxy, masquerade, policy/);
  assert.throws(() => parseDisabledFeatures('guard'), /"guard"/);
});

test('buildFeatures: every feature on by default, guard first; a switch set to false moves it to the disabled list', () => {
  const view = new ClusterView(new MemoryStore({ clock: new ManualClock() }));
  const all = buildFeatures(context(view));
  assert.deepEqual(all.enabled.map((f) => f.name), FEATURES.map((f) => f.name));
  assert.equal(all.enabled[0].name, 'guard');
  assert.deepEqual(all.disabled, []);
  const some = buildFeatures(context(view), { proxy: false, masquerade: true, policy: false });
  assert.deepEqual(some.enabled.map((f) => f.name), ['guard', 'routes', 'masquerade']);
  assert.deepEqual(some.disabled.map((f) => f.name), ['proxy', 'policy']);
  for (const f of FEATURES) if (f.optional) assert.ok(OPTIONAL_FEATURES.includes(f.optional));
});

const stub = (name: string, calls: string[], fail = false): Feature => ({
  name, start: async () => {}, poke: () => {}, idle: async () => {}, syncs: () => 0, stop: async () => {}, cleanup: async () => {},
  cniHooks: {
    async afterAdd(env, result) { calls.push(`${name} add ${env.CNI_CONTAINERID} ${result.ips?.[0]?.address}`); if (fail) throw new Error(`${name} failed`); },
    async afterDel(env) { calls.push(`${name} del ${env.CNI_CONTAINERID}`); },
  },
});

test('cniHooksOf: none without hooks; otherwise every feature\'s, in feature order, the first failure ending the chain', async () => {
  const calls: string[] = [];
  const plain: Feature = { ...stub('plain', calls), cniHooks: undefined };
  assert.equal(cniHooksOf([plain]), undefined);
  const result: CniResult = { cniVersion: '1.1.0', ips: [{ address: '10.244.1.5/24' }] };
  const hooks = cniHooksOf([stub('a', calls), plain, stub('b', calls)])!;
  await hooks.afterAdd!({ CNI_CONTAINERID: 'c1' }, result);
  await hooks.afterDel!({ CNI_CONTAINERID: 'c1' });
  assert.deepEqual(calls, ['a add c1 10.244.1.5/24', 'b add c1 10.244.1.5/24', 'a del c1', 'b del c1']);
  calls.length = 0;
  await assert.rejects(cniHooksOf([stub('a', calls, true), stub('b', calls)])!.afterAdd!({ CNI_CONTAINERID: 'c2' }, result), /a failed/);
  assert.deepEqual(calls, ['a add c2 10.244.1.5/24']);
});

test('loopFeature: start follows the view and (gating pods) waits for the first sync; pokes sync again; stop ends it', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  const view = new ClusterView(store);
  await view.start();
  const seen: number[] = [];
  let release!: () => void;
  const firstSync = new Promise<void>((r) => { release = r; });
  const f = loopFeature({
    name: 'demo', ctx: context(view), gatesPods: true,
    follow: (poke) => view.pods.onChange(poke),
    async sync(syncs) { seen.push(syncs); if (syncs === 0) await firstSync; },
    cleanup: async () => {},
  });
  let started = false;
  const starting = f.start().then(() => { started = true; });
  await until('the first sync to begin', () => seen.length === 1, 2000, 5);
  assert.equal(started, false, 'start waits for the first sync');
  release();
  await starting;
  assert.equal(f.syncs(), 1);
  await store.put(objectKey('Pod', 'a', 'default'), JSON.stringify({ metadata: { name: 'a', namespace: 'default' } }));
  await until('a sync for the new pod', () => f.syncs() === 2, 2000, 5);
  await f.idle();
  assert.deepEqual(seen, [0, 1]);
  await f.stop();
  f.poke();
  await f.idle();
  assert.equal(f.syncs(), 2, 'no sync after stop');
  await view.stop();
  await store.close();
});

/** A store whose listing of one prefix waits until released: the view must wait for it too. */
class SlowListStore extends MemoryStore {
  released!: () => void;
  private readonly gate = new Promise<void>((r) => { this.released = r; });
  constructor(private readonly slowPrefix: string) { super({ clock: new ManualClock() }); }
  override async list(prefix: string) {
    if (prefix === this.slowPrefix) await this.gate;
    return super.list(prefix);
  }
}

test('ClusterView: start resolves only when every kind has been listed, and each mirror reports changes', async () => {
  const store = new SlowListStore(NETWORKPOLICY_PREFIX);
  await store.put(objectKey('Pod', 'a', 'web'), JSON.stringify({ metadata: { name: 'a', namespace: 'web' } }));
  await store.put(objectKey('NetworkPolicy', 'deny', 'web'), JSON.stringify({ metadata: { name: 'deny', namespace: 'web' }, spec: { podSelector: {} } }));
  const view = new ClusterView(store);
  let ready = false;
  const starting = view.start().then(() => { ready = true; });
  assert.equal(view.start(), view.start(), 'started once');
  await until('the pods to be listed', () => view.pods.size === 1, 2000, 5);
  assert.equal(ready, false, 'not ready while the policies are still being listed');
  store.released();
  await starting;
  assert.deepEqual(view.networkPolicies.keys(), [objectKey('NetworkPolicy', 'deny', 'web')]);
  const changed: string[] = [];
  view.namespaces.onChange((cs) => changed.push(...cs.map((c) => c.key)));
  await store.put(objectKey('Namespace', 'web'), JSON.stringify({ metadata: { name: 'web', labels: { team: 'a' } } }));
  await until('the namespace change', () => changed.length === 1, 2000, 5);
  assert.deepEqual(changed, [objectKey('Namespace', 'web')]);
  assert.ok(POD_PREFIX.startsWith('/registry/pods/'));
  await view.stop();
  await store.close();
});

test('health: readiness waits for every feature\'s first sync and names the ones it waits for; a bad --health-listen names its value', async () => {
  const { readiness } = await import('../../src/agent/main.js');
  const { parseListen } = await import('../../src/agent/health.js');
  assert.deepEqual(readiness(undefined).ready, false);
  const feature = (name: string, syncs: number) => ({ name, syncs: () => syncs }) as unknown as Feature;
  const agent = (fs: Feature[]) => ({ features: fs }) as unknown as Parameters<typeof readiness>[0];
  assert.deepEqual(readiness(agent([feature('guard', 1), feature('policy', 0)])), { ready: false, detail: 'waiting for the first sync of policy' });
  assert.deepEqual(readiness(agent([feature('guard', 1), feature('policy', 2)])), { ready: true, detail: 'ready: guard, policy in sync' });
  assert.deepEqual(parseListen('127.0.0.1:9470'), { host: '127.0.0.1', port: 9470 });
  assert.deepEqual(parseListen('[::1]:9099'), { host: '::1', port: 9099 });
  assert.throws(() => parseListen('localhost:9099'), /--health-listen "localhost:9099": expected ADDRESS:PORT/);
  assert.throws(() => parseListen('127.0.0.1:70000'), /70000/);
});
