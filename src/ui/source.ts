// Where the page's data comes from: the lab's plan for the node network, the store for the rest, and
// the store's watch for "something changed". Reads every prefix anew on a change: simple and correct.
import { ENDPOINTSLICE_PREFIX, HEARTBEAT_PREFIX, NAMESPACE_PREFIX, NETWORKPOLICY_PREFIX, NODE_PREFIX, POD_PREFIX, REGISTRY, SERVICE_PREFIX, heartbeatNode } from '../api/keys.js';
import type { ClusterLab } from '../lab/cluster.js';
import { hostAddress } from '../lab/cluster-file.js';
import type { Store, Watch } from '../store/store.js';
import { buildModel, type UiModel } from './model.js';
import { TraceInputError, type TraceRunner } from './trace-api.js';

const listOf = async <T>(store: Store, prefix: string): Promise<{ items: T[]; revision: number }> => {
  const l = await store.list(prefix);
  return { items: l.items.map((kv) => JSON.parse(kv.value) as T), revision: l.revision };
};

/** One snapshot of the lab as the page draws it. */
export async function readModel(lab: ClusterLab, store: Store): Promise<UiModel> {
  const cluster = lab.cluster();
  const plan = lab.plan(cluster);
  const [nodes, pods, services, slices, namespaces, policies, beats] = await Promise.all([
    listOf<never>(store, NODE_PREFIX), listOf<never>(store, POD_PREFIX), listOf<never>(store, SERVICE_PREFIX),
    listOf<never>(store, ENDPOINTSLICE_PREFIX), listOf<never>(store, NAMESPACE_PREFIX), listOf<never>(store, NETWORKPOLICY_PREFIX),
    store.list(HEARTBEAT_PREFIX),
  ]);
  return buildModel({
    lab: lab.name, backend: cluster.backend, clusterCIDR: cluster.clusterCIDR,
    revision: Math.max(nodes.revision, pods.revision, services.revision, slices.revision, namespaces.revision, policies.revision),
    router: plan.router, external: { ip: plan.external.ip },
    segments: cluster.segments.map((s) => ({ name: s.name, subnet: s.subnet, routerAddress: hostAddress(s.subnet, 1) })),
    planNodes: plan.nodes.map((n) => ({ name: n.name, segment: n.segment, ip: n.ip })),
    nodes: nodes.items, pods: pods.items, services: services.items, slices: slices.items,
    namespaces: namespaces.items, policies: policies.items, alive: new Set(beats.items.map((kv) => heartbeatNode(kv.key))),
  });
}

/**
 * Calls `onChange` after writes under the registry and the heartbeats, at most once per `settleMs`
 * (a Deployment's rollout is dozens of writes). A watch the store ends is started again from now,
 * with one onChange for what it may have missed.
 */
export async function watchChanges(store: Store, onChange: () => void, settleMs = 100): Promise<{ stop(): Promise<void> }> {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const poke = () => { if (!stopped && !timer) timer = setTimeout(() => { timer = undefined; onChange(); }, settleMs); };
  const watches = new Map<string, Watch>();
  const start = async (prefix: string): Promise<void> => {
    const w = await store.watch(prefix, 0, {
      onEvents: poke,
      onResync: () => { watches.delete(prefix); if (!stopped) { poke(); void start(prefix).catch(() => undefined); } },
    });
    if (stopped) await w.cancel(); else watches.set(prefix, w);
  };
  await Promise.all([start(REGISTRY), start(HEARTBEAT_PREFIX)]);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await Promise.all([...watches.values()].map((w) => w.cancel()));
    },
  };
}

/** `flatnet trace` in this process, for the page's POST /api/trace; the trace's argument errors become 400s. */
export function labTraceRunner(lab: ClusterLab): TraceRunner {
  return async (from, to) => {
    const { runTrace, TraceArgError } = await import('../trace/run.js');
    try {
      return await runTrace(lab, { from, to, namespace: 'default' });
    } catch (err) {
      if (err instanceof TraceArgError) throw new TraceInputError('trace', `${from} → ${to}`, err.message);
      throw err;
    }
  };
}
