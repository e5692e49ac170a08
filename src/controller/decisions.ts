// The controller's decisions, pure: node readiness, deployment replicas, pod garbage collection and
// scheduling each map the current objects to the writes that would make them right. controller.ts
// only feeds them the mirrors and applies what they return with compare-and-set.
import { objectKey } from '../api/keys.js';
import { podCIDRsOf, type Deployment, type Node, type NodeCondition, type Pod } from '../api/types.js';
import { fullReason, nodeCapacity, takesPodIP, type NodeCapacity } from './capacity.js';
import { BURST_REPLICAS } from './slow-start.js';

export const podKey = (p: Pod): string => objectKey('Pod', p.metadata.name, p.metadata.namespace ?? 'default');
export const deploymentKey = (d: Deployment): string => objectKey('Deployment', d.metadata.name, d.metadata.namespace ?? 'default');
export const podId = (p: Pod): string => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

// ---- Node Ready ----

/** The Ready condition a node should carry, or undefined when the one it has is already right. */
export function readyCondition(node: Node, agentAlive: boolean, now: string): NodeCondition | undefined {
  const status = agentAlive ? 'True' : 'False';
  const current = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (current?.status === status) return undefined;
  return agentAlive
    ? { type: 'Ready', status, reason: 'AgentReady', message: 'the flatnet agent is keeping its heartbeat', lastTransitionTime: now }
    : { type: 'Ready', status, reason: 'HeartbeatLost', message: 'no heartbeat from the flatnet agent', lastTransitionTime: now };
}

/** The node with its Ready condition replaced; every other status field (addresses) kept. */
export function withCondition(node: Node, condition: NodeCondition): Node {
  const others = (node.status?.conditions ?? []).filter((c) => c.type !== condition.type);
  return { ...node, status: { ...node.status, conditions: [...others, condition] } };
}

// ---- Deployments ----

/** Pod-name suffix alphabet: Kubernetes' (no vowels, no look-alikes), so names never spell words. */
export const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function ownerDeployment(pod: Pod): { name: string; uid?: string } | undefined {
  return pod.metadata.ownerReferences?.find((o) => o.kind === 'Deployment');
}

/** True when `pod` was made for this deployment (same namespace and name; same uid when both have one). */
export function ownedBy(pod: Pod, d: Deployment): boolean {
  const owner = ownerDeployment(pod);
  if (!owner || owner.name !== d.metadata.name) return false;
  if ((pod.metadata.namespace ?? 'default') !== (d.metadata.namespace ?? 'default')) return false;
  return owner.uid === undefined || d.metadata.uid === undefined || owner.uid === d.metadata.uid;
}

export interface DeploymentPlan {
  create: Pod[];
  /** Extras to delete, newest first. */
  remove: Pod[];
  status: { replicas: number; readyReplicas: number };
}

export interface NewPodIdentity {
  /** A fresh 5-character suffix from SUFFIX_ALPHABET. */
  suffix(): string;
  uid(): string;
  now: string;
}

const isReady = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/**
 * Moves a deployment's pods toward spec.replicas: new pods from the template, or the newest extras
 * removed, at most `burst` of either per sync (the ReplicaSet controller's burstReplicas), so a huge
 * replicas count is reached over many syncs and never built in memory at once.
 * `taken` holds every pod name in use in the namespace, so a new name never collides with one.
 */
export function planDeployment(d: Deployment, owned: Pod[], taken: Set<string>, id: NewPodIdentity, burst = BURST_REPLICAS): DeploymentPlan {
  const want = Math.max(0, d.spec.replicas ?? 1);
  const newestFirst = [...owned].sort((a, b) =>
    (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') || b.metadata.name.localeCompare(a.metadata.name));
  const remove = newestFirst.slice(0, Math.min(burst, Math.max(0, owned.length - want)));
  const create: Pod[] = [];
  const names = new Set(taken);
  for (let i = owned.length; i < Math.min(want, owned.length + burst); i++) {
    let name: string;
    do name = `${d.metadata.name}-${id.suffix()}`; while (names.has(name));
    names.add(name);
    create.push(podFromTemplate(d, name, id.uid(), id.now));
  }
  const kept = owned.filter((p) => !remove.includes(p));
  return { create, remove, status: { replicas: kept.length + create.length, readyReplicas: kept.filter(isReady).length } };
}

export function podFromTemplate(d: Deployment, name: string, uid: string, now: string): Pod {
  const t = d.spec.template;
  const metadata: Pod['metadata'] = {
    name,
    namespace: d.metadata.namespace ?? 'default',
    uid,
    labels: { ...(t.metadata?.labels ?? {}) },
    creationTimestamp: now,
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid }],
  };
  if (t.metadata?.annotations) metadata.annotations = { ...t.metadata.annotations };
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: structuredClone(t.spec), status: { phase: 'Pending' } };
}

/** Pods whose owning Deployment no longer exists (or was recreated under the same name: a new uid). */
export function orphanedPods(pods: Pod[], deployments: Deployment[]): Pod[] {
  return pods.filter((p) => ownerDeployment(p) && !deployments.some((d) => ownedBy(p, d)));
}

// ---- Pod GC ----

/** Pods bound to a node whose Node object is gone: nothing will ever run or clean them up. */
export function podsOnMissingNodes(pods: Pod[], nodes: Node[]): Pod[] {
  const names = new Set(nodes.map((n) => n.metadata.name));
  return pods.filter((p) => p.spec.nodeName && !names.has(p.spec.nodeName));
}

// ---- Scheduler ----

export interface ScheduleResult {
  bindings: Array<{ pod: Pod; nodeName: string }>;
  /** Pods no node fits, with the `0/N nodes are available: ...` message for their status. */
  unschedulable: Array<{ pod: Pod; message: string }>;
}

const terminated = (p: Pod) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

/**
 * Binds every pod without spec.nodeName, oldest first, to the fitting node with the fewest pods (ties
 * by name). A node fits when its agent is alive (heartbeat key present), it has a pod CIDR, its
 * labels match the pod's nodeSelector and it has room (capacity.ts: maxPods, its pod CIDR's
 * addresses). Each binding counts toward the next pod's choice.
 */
export function schedulePods(pods: Pod[], nodes: Node[], alive: Set<string>, opts: { maxPods?: number } = {}): ScheduleResult {
  const capacity = new Map<string, NodeCapacity>(nodes.map((n) => [n.metadata.name, nodeCapacity(n, opts.maxPods)]));
  const used = new Map<string, NodeCapacity>(nodes.map((n) => [n.metadata.name, { pods: 0, podIPs: 0 }]));
  const take = (p: Pod, node: string) => { const u = used.get(node)!; u.pods++; if (takesPodIP(p)) u.podIPs++; };
  for (const p of pods) {
    if (p.spec.nodeName && !terminated(p) && used.has(p.spec.nodeName)) take(p, p.spec.nodeName);
  }
  const pending = pods.filter((p) => !p.spec.nodeName && !terminated(p)).sort((a, b) =>
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || podId(a).localeCompare(podId(b)));
  const result: ScheduleResult = { bindings: [], unschedulable: [] };
  const byName = [...nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const pod of pending) {
    const reasons = new Map<string, number>();
    let best: string | undefined;
    for (const n of byName) {
      const why = unfitReason(pod, n, alive) ?? fullReason(pod, capacity.get(n.metadata.name)!, used.get(n.metadata.name)!);
      if (why) { reasons.set(why, (reasons.get(why) ?? 0) + 1); continue; }
      if (best === undefined || used.get(n.metadata.name)!.pods < used.get(best)!.pods) best = n.metadata.name;
    }
    if (best === undefined) {
      result.unschedulable.push({ pod, message: unschedulableMessage(nodes.length, reasons) });
      continue;
    }
    take(pod, best);
    result.bindings.push({ pod, nodeName: best });
  }
  return result;
}

/** A pending pod's status as kube-scheduler leaves it when no node fits: PodScheduled False, Unschedulable. */
export function unschedulableStatus(pod: Pod, message: string): NonNullable<Pod['status']> {
  const others = (pod.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled');
  return { ...pod.status, phase: 'Pending', message, conditions: [...others, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] };
}

/** Why a node cannot take a pod, in kube-scheduler's words; undefined when it can. */
export function unfitReason(pod: Pod, node: Node, alive: Set<string>): string | undefined {
  if (!alive.has(node.metadata.name)) return 'node(s) were not ready';
  if (podCIDRsOf(node).length === 0) return 'node(s) had no pod CIDR';
  const labels = node.metadata.labels ?? {};
  const selector = pod.spec.nodeSelector ?? {};
  if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) return "node(s) didn't match Pod's node selector";
  return undefined;
}

function unschedulableMessage(total: number, reasons: Map<string, number>): string {
  if (total === 0) return '0/0 nodes are available: no nodes are registered.';
  const parts = [...reasons].sort(([a], [b]) => a.localeCompare(b)).map(([why, count]) => `${count} ${why}`);
  return `0/${total} nodes are available: ${parts.join(', ')}.`;
}
