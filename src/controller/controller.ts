// flatnet controller: the cluster's control loops in one process, as kube-controller-manager and
// kube-scheduler would run them: node IPAM, node readiness, deployments, pod GC and the scheduler.
// Every process mirrors the store (a warm standby); only the elected leader syncs. One sync computes
// every loop's decisions (decisions.ts, podcidr.ts) and applies them with compare-and-set, so a write
// based on a stale copy fails instead of overwriting someone else's.
import { randomInt, randomUUID } from 'node:crypto';
import { CLUSTER_CONFIG_KEY, DEPLOYMENT_PREFIX, ENDPOINTSLICE_PREFIX, HEARTBEAT_PREFIX, NAMESPACE_PREFIX, NODE_PREFIX, POD_PREFIX, SERVICE_PREFIX, heartbeatNode, objectKey } from '../api/keys.js';
import { parseClusterConfig, podCIDRsOf, type ClusterConfig, type Deployment, type EndpointSlice, type Namespace, type Node, type Pod, type Service } from '../api/types.js';
import { Mirror, jsonDecode } from '../store/mirror.js';
import { SyncRunner } from '../store/runner.js';
import { setControllerLeader, timedControllerStep } from '../metrics/registry.js';
import { isTerminating, markTerminating } from '../api/termination.js';
import type { Store } from '../store/store.js';
import { AssumedView } from './assumed.js';
import {
  SUFFIX_ALPHABET, deploymentKey, orphanedPods, ownedBy, ownerDeployment, planDeployment, podId, podKey, podsOnMissingNodes,
  readyCondition, schedulePods, unschedulableStatus, withCondition,
} from './decisions.js';
import { desiredSlices, sameSlice, sliceService } from './endpoints.js';
import { LeaderElector } from './leader.js';
import { BURST_REPLICAS, slowStartBatch } from './slow-start.js';
import { allocateNodeCIDRs } from './podcidr.js';
import { DEFAULT_NODE_MONITOR_GRACE_MS, planNodeLifecycle, withPodNotReady } from './node-lifecycle.js';

export interface ControllerOptions {
  store: Store;
  /** Names this process in the leader key and its logs. */
  identity: string;
  leaseTtlSeconds?: number;
  /** Full resync period, the safety net against a missed change; default 30 s. */
  resyncMs?: number;
  /** How long a node stays NotReady before its pods are marked not Ready; default 40 s, as Kubernetes. */
  nodeMonitorGraceMs?: number;
  log?: (msg: string) => void;
}

export interface Controller {
  isLeader(): boolean;
  /** Resolves when no sync is running or pending. */
  idle(): Promise<void>;
  /** Stops syncing, gives up leadership (the lease is revoked) and stops the mirrors. */
  stop(): Promise<void>;
}

/** Thrown by a write attempted after leadership ended: the sync stops where it is. */
class NotLeaderError extends Error {}

const randomSuffix = () => Array.from({ length: 5 }, () => SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)]).join('');

export async function startController(o: ControllerOptions): Promise<Controller> {
  const { store } = o;
  const log = o.log ?? ((m: string) => console.log(m));
  const nodeMirror = new Mirror<Node>(store, NODE_PREFIX, jsonDecode);
  const heartbeatMirror = new Mirror<string>(store, HEARTBEAT_PREFIX, (kv) => kv.value);
  const podMirror = new Mirror<Pod>(store, POD_PREFIX, jsonDecode);
  const deploymentMirror = new Mirror<Deployment>(store, DEPLOYMENT_PREFIX, jsonDecode);
  const configPrefix = CLUSTER_CONFIG_KEY.slice(0, CLUSTER_CONFIG_KEY.lastIndexOf('/') + 1);
  const configMirror = new Mirror<string>(store, configPrefix, (kv) => kv.value);
  const serviceMirror = new Mirror<Service>(store, SERVICE_PREFIX, jsonDecode);
  const sliceMirror = new Mirror<EndpointSlice>(store, ENDPOINTSLICE_PREFIX, jsonDecode);
  const namespaceMirror = new Mirror<Namespace>(store, NAMESPACE_PREFIX, jsonDecode);
  const mirrors = [nodeMirror, heartbeatMirror, podMirror, deploymentMirror, configMirror, serviceMirror, sliceMirror, namespaceMirror];
  const slices = new AssumedView(sliceMirror);
  const nodes = new AssumedView(nodeMirror);
  const pods = new AssumedView(podMirror);
  const deployments = new AssumedView(deploymentMirror);
  const namespaces = new AssumedView(namespaceMirror);

  // Failures that repeat every sync (an exhausted CIDR, a bad config) are logged when they first appear.
  let lastProblems = new Set<string>();
  let problems = new Set<string>();
  const problem = (msg: string) => { problems.add(msg); if (!lastProblems.has(msg)) log(msg); };

  let elector: LeaderElector;
  const requireLeader = () => { if (!elector.isLeader()) throw new NotLeaderError('no longer the leader'); };

  /** Writes an object with compare-and-set; false when it changed since `modRevision` (the next sync redoes it). */
  async function update<T>(view: AssumedView<T>, key: string, value: T, modRevision: number): Promise<boolean> {
    requireLeader();
    if (!(await store.update(key, JSON.stringify(value), modRevision))) return false;
    view.wrote(key, value, modRevision);
    return true;
  }

  async function remove<T>(view: AssumedView<T>, key: string, modRevision: number): Promise<boolean> {
    requireLeader();
    if (!(await store.deleteIf(key, modRevision))) return false;
    view.deleted(key, modRevision);
    return true;
  }

  /** Deletes a pod gracefully (termination.ts); false when there was nothing to write or it changed meanwhile. */
  async function terminate(key: string, pod: Pod, modRevision: number): Promise<boolean> {
    const marked = markTerminating(pod, Date.now());
    if (!marked) return remove(pods, key, modRevision);
    return marked !== pod && update(pods, key, marked, modRevision);
  }

  // Loop 2: node IPAM. Allocates from a fresh listing, not the mirror, so a lagging watch can never make
  // it hand a CIDR it just gave one node to another.
  async function allocateCIDRs(config: ClusterConfig): Promise<void> {
    if (nodes.values().every((n) => podCIDRsOf(n).length > 0)) return;
    const listing = await store.list(NODE_PREFIX);
    const current = listing.items.map((kv) => ({ kv, node: JSON.parse(kv.value) as Node }));
    const allocation = allocateNodeCIDRs(config, current.map(({ node }) => ({ name: node.metadata.name, podCIDRs: podCIDRsOf(node) })));
    for (const f of allocation.failures) problem(f.message);
    for (const { kv, node } of current) {
      const cidrs = allocation.get(node.metadata.name);
      if (podCIDRsOf(node).length > 0 || !cidrs) continue;
      const updated: Node = { ...node, spec: { ...node.spec, podCIDR: cidrs[0], podCIDRs: cidrs } };
      if (await update(nodes, kv.key, updated, kv.modRevision)) log(`node ${node.metadata.name}: pod CIDR ${cidrs.join(', ')}`);
    }
  }

  // Loop 3: node Ready from the heartbeat keys.
  async function markReadiness(alive: Set<string>): Promise<void> {
    for (const [key, node] of nodes.entries()) {
      const condition = readyCondition(node, alive.has(node.metadata.name), new Date().toISOString());
      const rev = nodes.modRevision(key);
      if (!condition || rev === undefined) continue;
      if (await update(nodes, key, withCondition(node, condition), rev)) {
        log(`node ${node.metadata.name}: ${condition.status === 'True' ? 'Ready' : `NotReady (${condition.reason})`}`);
      }
    }
  }

  // Loop 3b: pods of a node NotReady past the grace period go not Ready (their endpoints with them).
  let lifecycleTimer: NodeJS.Timeout | undefined;
  async function markPodsOfLostNodes(): Promise<void> {
    const plan = planNodeLifecycle(nodes.values(), pods.values(), Date.now(), o.nodeMonitorGraceMs ?? DEFAULT_NODE_MONITOR_GRACE_MS);
    for (const pod of plan.markNotReady) {
      const key = podKey(pod);
      const rev = pods.modRevision(key);
      if (rev !== undefined && (await update(pods, key, withPodNotReady(pod), rev))) log(`pod ${podId(pod)}: not ready (node ${pod.spec.nodeName} is NotReady)`);
    }
    clearTimeout(lifecycleTimer);
    if (plan.nextCheckAt !== undefined) lifecycleTimer = setTimeout(() => runner.poke(), Math.max(0, plan.nextCheckAt - Date.now()) + 50).unref();
  }

  // Loop 6: pods bound to a node whose Node object is gone.
  async function collectPods(): Promise<void> {
    for (const pod of podsOnMissingNodes(pods.values(), nodes.values())) {
      const key = podKey(pod);
      const rev = pods.modRevision(key);
      if (rev !== undefined && (await remove(pods, key, rev))) log(`pod ${podId(pod)}: deleted (node ${pod.spec.nodeName} is gone)`);
    }
  }

  // A deleted namespace whose pods were still terminating stayed, Terminating: removed once they are gone.
  async function finishNamespaces(): Promise<void> {
    const inUse = new Set(pods.values().map((p) => p.metadata.namespace ?? 'default'));
    for (const [key, ns] of namespaces.entries()) {
      if (ns.status?.phase !== 'Terminating' || inUse.has(ns.metadata.name)) continue;
      const rev = namespaces.modRevision(key);
      if (rev !== undefined && (await remove(namespaces, key, rev))) log(`namespace ${ns.metadata.name}: deleted (its pods are gone)`);
    }
  }

  // Loop 4: deployments.
  async function syncDeployments(): Promise<void> {
    const allDeployments = deployments.values();
    const allPods = pods.values();
    for (const pod of orphanedPods(allPods, allDeployments)) {
      const key = podKey(pod);
      const rev = pods.modRevision(key);
      if (rev !== undefined && (await terminate(key, pod, rev))) log(`pod ${podId(pod)}: deleted (deployment ${ownerDeployment(pod)?.name} is gone)`);
    }
    for (const d of allDeployments) {
      const ns = d.metadata.namespace ?? 'default';
      // Terminating pods are on their way out: the Deployment counts and replaces only the others.
      const owned = allPods.filter((p) => ownedBy(p, d) && !isTerminating(p));
      const taken = new Set(allPods.filter((p) => (p.metadata.namespace ?? 'default') === ns).map((p) => p.metadata.name));
      const plan = planDeployment(d, owned, taken, { suffix: randomSuffix, uid: randomUUID, now: new Date().toISOString() });
      // Slow start: a burst of creates that fail stops early; the next sync (other loops ran meanwhile) goes on.
      const created = await slowStartBatch(plan.create.length, async (i) => {
        const pod = plan.create[i];
        requireLeader();
        const key = podKey(pod);
        if (!(await store.create(key, JSON.stringify(pod)))) return false;
        pods.wrote(key, pod, undefined);
        if (plan.create.length <= 10) log(`deployment ${ns}/${d.metadata.name}: created pod ${pod.metadata.name}`);
        return true;
      });
      if (plan.create.length > 10) log(`deployment ${ns}/${d.metadata.name}: created ${created} pods (${owned.length + created} of ${d.spec.replicas ?? 1})`);
      plan.status.replicas += created - plan.create.length;
      for (const pod of plan.remove) {
        const key = podKey(pod);
        const rev = pods.modRevision(key);
        if (rev !== undefined && (await terminate(key, pod, rev))) log(`deployment ${ns}/${d.metadata.name}: deleted pod ${pod.metadata.name} (scaled to ${d.spec.replicas ?? 1})`);
      }
      const key = deploymentKey(d);
      const rev = deployments.modRevision(key);
      const status = d.status ?? {};
      if (rev !== undefined && (status.replicas !== plan.status.replicas || status.readyReplicas !== plan.status.readyReplicas)) {
        await update(deployments, key, { ...d, status: { ...d.status, ...plan.status } }, rev);
      }
    }
  }

  // Loop 5: the scheduler.
  async function schedule(alive: Set<string>, config: ClusterConfig | undefined): Promise<void> {
    const result = schedulePods(pods.values(), nodes.values(), alive, { maxPods: config?.maxPods });
    for (const { pod, nodeName } of result.bindings) {
      const key = podKey(pod);
      const rev = pods.modRevision(key);
      if (rev === undefined) continue; // our own create is not in the mirror yet: bound next sync
      const status = { ...pod.status };
      delete status.message;
      if (status.conditions) status.conditions = status.conditions.filter((c) => c.type !== 'PodScheduled');
      if (await update(pods, key, { ...pod, spec: { ...pod.spec, nodeName }, status }, rev)) log(`pod ${podId(pod)}: scheduled to ${nodeName}`);
    }
    let written = 0;
    for (const { pod, message } of result.unschedulable) {
      const key = podKey(pod);
      const rev = pods.modRevision(key);
      // Written once: a pod already carrying this message is left alone, so no write loop.
      if (rev === undefined || pod.status?.message === message) continue;
      // Thousands of pending pods are marked over several syncs (each write starts another), so no sync waits on them all.
      if (written++ >= BURST_REPLICAS) break;
      if (await update(pods, key, { ...pod, status: unschedulableStatus(pod, message) }, rev)) log(`pod ${podId(pod)}: unschedulable: ${message}`);
    }
  }

  // Loop 7: EndpointSlices from each Service's selector and the pods it selects.
  async function syncEndpointSlices(): Promise<void> {
    const allPods = pods.values();
    const wanted = new Set<string>();
    for (const service of serviceMirror.values()) {
      for (const slice of desiredSlices(service, allPods)) {
        const key = objectKey('EndpointSlice', slice.metadata.name, slice.metadata.namespace);
        wanted.add(key);
        const stored = slices.get(key);
        if (stored && sameSlice(stored, slice)) continue;
        requireLeader();
        const id = `${slice.metadata.namespace}/${slice.metadata.name}`;
        const count = slice.endpoints.filter((e) => e.conditions.ready).length;
        if (!stored) {
          const created: EndpointSlice = { ...slice, metadata: { ...slice.metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } };
          if (await store.create(key, JSON.stringify(created))) { slices.wrote(key, created, undefined); log(`endpointslice ${id}: created, ${count} ready`); }
          continue;
        }
        const rev = slices.modRevision(key);
        if (rev === undefined) continue;
        if (await update(slices, key, { ...slice, metadata: { ...stored.metadata, labels: slice.metadata.labels } }, rev)) log(`endpointslice ${id}: ${count} ready of ${slice.endpoints.length}`);
      }
    }
    // Slices this controller made whose Service is gone, or whose port mapping no pod has any more.
    for (const [key, slice] of slices.entries()) {
      if (wanted.has(key) || sliceService(slice) === undefined) continue;
      const rev = slices.modRevision(key);
      if (rev !== undefined && (await remove(slices, key, rev))) log(`endpointslice ${slice.metadata.namespace}/${slice.metadata.name}: deleted`);
    }
  }

  async function sync(): Promise<void> {
    if (!elector.isLeader()) return;
    problems = new Set();
    const failures: string[] = [];
    const step = async (what: string, fn: () => Promise<void>) => {
      try { await timedControllerStep(what, fn); } catch (err) {
        if (err instanceof NotLeaderError) throw err;
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    try {
      const alive = new Set(heartbeatMirror.keys().map(heartbeatNode));
      let config: ClusterConfig | undefined;
      await step('cluster config', async () => { config = parseClusterConfig(configMirror.get(CLUSTER_CONFIG_KEY)); });
      if (config) await step('node IPAM', () => allocateCIDRs(config!));
      await step('node readiness', () => markReadiness(alive));
      await step('node lifecycle', markPodsOfLostNodes);
      await step('pod GC', collectPods);
      await step('namespaces', finishNamespaces);
      await step('deployments', syncDeployments);
      await step('scheduler', () => schedule(alive, config));
      await step('endpointslices', syncEndpointSlices);
    } catch (err) {
      if (err instanceof NotLeaderError) return;
      throw err;
    }
    for (const f of failures) problem(f);
    lastProblems = problems;
    // A failed step is retried by the runner (after retryMs) even if nothing changes in the store.
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  let inFlight: Promise<void> = Promise.resolve();
  const runner = new SyncRunner(() => (inFlight = sync()), {
    minIntervalMs: 50,
    periodMs: o.resyncMs ?? 30_000,
    onError: () => undefined, // each failure was logged, once, by problem()
  });

  elector = new LeaderElector({
    store, identity: o.identity, leaseTtlSeconds: o.leaseTtlSeconds, log,
    onStartedLeading: () => {
      log('leading');
      setControllerLeader(true);
      lastProblems = new Set();
      for (const v of [nodes, pods, deployments, slices, namespaces] as AssumedView<unknown>[]) v.clear();
      runner.poke();
    },
    onStoppedLeading: () => { log('stopped leading'); setControllerLeader(false); },
  });

  try {
    await Promise.all(mirrors.map((m) => m.start()));
  } catch (err) {
    await Promise.all(mirrors.map((m) => m.stop()));
    throw err;
  }
  for (const m of mirrors) (m as Mirror<unknown>).onChange(() => runner.poke());
  runner.start();
  await elector.start();

  return {
    isLeader: () => elector.isLeader(),
    async idle() {
      await runner.idle();
      await inFlight.catch(() => undefined);
    },
    async stop() {
      runner.stop();
      clearTimeout(lifecycleTimer);
      await inFlight.catch(() => undefined);
      await elector.stop();
      await Promise.all(mirrors.map((m) => m.stop()));
    },
  };
}
