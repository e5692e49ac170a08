// One contract for every AgentView backend (the etcd ClusterView, the Kubernetes-API KubeView): what the
// features rely on, whichever datastore they read. Objects are written straight into the store; the
// view under test sees them through its own path (an etcd watch, or the lab API's watch over that store).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { kindPrefix, objectKey } from '../../src/api/keys.js';
import type { Kind } from '../../src/api/types.js';
import type { AgentView, ObjectCache } from '../../src/agent/cluster-view.js';
import type { MirrorChange } from '../../src/store/mirror.js';
import type { Store } from '../../src/store/store.js';
import { until } from './until.js';

export interface ViewUnderTest {
  view: AgentView;
  /** Runs `fn` while the view's watches are cut off from the store, then lets them reconnect. */
  whileDisconnected(fn: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export interface ViewBackend {
  name: string;
  /** The store the objects are written to (and compacted). */
  store: Store;
  make(): Promise<ViewUnderTest>;
  /** Restarts the server between views and store (only a backend that has one). */
  restartServer?(): Promise<void>;
}

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string } } & Record<string, unknown>;
const VIEW_KINDS: Array<[keyof AgentView & string, Kind]> = [
  ['nodes', 'Node'], ['services', 'Service'], ['endpointSlices', 'EndpointSlice'],
  ['pods', 'Pod'], ['namespaces', 'Namespace'], ['networkPolicies', 'NetworkPolicy'],
];

/** One valid object of `kind`, as `flatnet apply` or the controller would store it. */
export function sample(kind: Kind, name: string, ns = 'contract'): Obj {
  const meta = (namespaced: boolean) => ({ name, ...(namespaced ? { namespace: ns } : {}), uid: `uid-${kind}-${name}`, creationTimestamp: '2026-12-06T20:00:00Z', labels: { app: name } });
  switch (kind) {
    case 'Node': return { apiVersion: 'v1', kind, metadata: meta(false), spec: { podCIDR: '10.244.9.0/24', podCIDRs: ['10.244.9.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.9' }] } };
    case 'Namespace': return { apiVersion: 'v1', kind, metadata: meta(false), spec: {}, status: { phase: 'Active' } };
    case 'Pod': return { apiVersion: 'v1', kind, metadata: meta(true), spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] }, status: { phase: 'Running', podIP: '10.244.9.5', podIPs: [{ ip: '10.244.9.5' }] } };
    case 'Service': return { apiVersion: 'v1', kind, metadata: meta(true), spec: { selector: { app: name }, clusterIP: '10.96.0.9', clusterIPs: ['10.96.0.9'], ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }] } };
    case 'EndpointSlice': return { apiVersion: 'discovery.k8s.io/v1', kind, metadata: { ...meta(true), labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.9.5'], conditions: { ready: true } }], ports: [{ port: 8080, protocol: 'TCP' }] };
    case 'NetworkPolicy': return { apiVersion: 'networking.k8s.io/v1', kind, metadata: meta(true), spec: { podSelector: { matchLabels: { app: name } }, policyTypes: ['Ingress'] } };
    default: throw new Error(`no sample for ${kind}`);
  }
}

const keyOf = (o: Obj): string => objectKey(o.kind as Kind, o.metadata.name, o.metadata.namespace);
/** The object without its resourceVersion (the etcd view has none; the API sets the modRevision). */
export function content(o: unknown): unknown {
  if (!o) return o;
  const c = structuredClone(o) as Obj;
  delete c.metadata.resourceVersion;
  return c;
}

async function put(store: Store, o: Obj): Promise<number> { return store.put(keyOf(o), JSON.stringify(o)); }

/** Every kind in the view equals the store: same keys, same content. */
async function viewMatchesStore(store: Store, view: AgentView): Promise<string | undefined> {
  for (const [field, kind] of VIEW_KINDS) {
    const cache = view[field] as unknown as ObjectCache<Obj>;
    const listing = await store.list(kindPrefix(kind));
    const want = new Map(listing.items.map((kv) => [kv.key, JSON.parse(kv.value)]));
    const have = new Set<string>();
    for (const o of cache.values()) {
      const key = keyOf(o);
      have.add(key);
      if (!want.has(key)) return `${kind} ${key}: in the view, not in the store (a ghost)`;
      try { assert.deepEqual(content(o), content(want.get(key))); } catch { return `${kind} ${key}: content differs`; }
    }
    for (const key of want.keys()) if (!have.has(key)) return `${kind} ${key}: in the store, missing from the view`;
  }
  return undefined;
}

/** Records every change a cache reports. */
function recorder<T>(cache: ObjectCache<T>): MirrorChange<T>[] {
  const seen: MirrorChange<T>[] = [];
  cache.onChange((changes) => seen.push(...changes));
  return seen;
}

/** Names unique across every backend's tests: they share one store. */
let named = 0;

export function viewContract(backend: ViewBackend): void {
  const { store } = backend;
  const open: ViewUnderTest[] = [];
  const make = async () => { const v = await backend.make(); open.push(v); return v; };
  after(async () => { for (const v of open) await v.close(); });
  const fresh = (what: string) => `${what}-${++named}`;

  test(`${backend.name}: start() holds every existing object of each kind, same keys, equal content`, async () => {
    for (const [, kind] of VIEW_KINDS) await put(store, sample(kind, fresh('listed')));
    const { view } = await make();
    await view.start();
    const diff = await viewMatchesStore(store, view);
    assert.equal(diff, undefined, diff);
  });

  test(`${backend.name}: creates, updates and deletes after start arrive with their before and after`, async () => {
    const { view } = await make();
    await view.start();
    const seen = recorder(view.pods as unknown as ObjectCache<Obj>);
    const v1 = sample('Pod', fresh('live'));
    const key = keyOf(v1);
    await put(store, v1);
    const v2 = { ...v1, metadata: { ...v1.metadata, labels: { app: 'changed' } } };
    await until('the create', () => view.pods.get(key));
    await put(store, v2);
    await until('the update', () => (view.pods.get(key) as unknown as Obj | undefined)?.metadata.labels?.app === 'changed');
    await store.delete(key);
    await until('the delete', () => seen.filter((c) => c.key === key).length >= 3 && !view.pods.get(key));
    const mine = seen.filter((c) => c.key === key).map((c) => ({ before: content(c.before), after: content(c.after) }));
    assert.deepEqual(mine, [{ before: undefined, after: v1 }, { before: v1, after: v2 }, { before: v2, after: undefined }]);
  });

  test(`${backend.name}: a compaction past a watch that is behind: converges, no ghost, nothing missing`, async () => {
    const gone = sample('Pod', fresh('gone'));
    const kept = sample('Service', fresh('kept'));
    await put(store, gone);
    await put(store, kept);
    const { view, whileDisconnected } = await make();
    await view.start();
    const seen = recorder(view.pods as unknown as ObjectCache<Obj>);
    const born = sample('Pod', fresh('born'));
    await whileDisconnected(async () => {
      await store.delete(keyOf(gone));
      await put(store, born);
      await put(store, { ...kept, metadata: { ...kept.metadata, labels: { app: 'relabelled' } } });
      // Compact past every change made while cut off: the watch cannot resume, only relist.
      await store.compact(await put(store, sample('Namespace', fresh('last'))));
    });
    await until('the view matching the store', async () => (await viewMatchesStore(store, view)) === undefined, 30_000, 200);
    assert.ok(seen.some((c) => c.key === keyOf(gone) && c.before && !c.after), 'the deleted pod is reported deleted');
    assert.ok(seen.some((c) => c.key === keyOf(born) && !c.before && c.after), `the new pod is reported added: ${JSON.stringify(seen.map((c) => [c.key, !!c.before, !!c.after]))}`);
  });

  const restartServer = backend.restartServer;
  if (!restartServer) return;
  test(`${backend.name}: after the server between view and store restarts, later changes still arrive`, async () => {
    const { view } = await make();
    await view.start();
    await restartServer();
    const after1 = sample('Pod', fresh('after-restart'));
    await put(store, after1);
    await until('a change after the restart', () => view.pods.get(keyOf(after1)), 30_000, 200);
    const diff = await viewMatchesStore(store, view);
    assert.equal(diff, undefined, diff);
  });
}
