// The node lifecycle decision, pure: what Kubernetes' node lifecycle controller does for pods of a node
// that stopped reporting. NotReady at once stops new pods landing there (the scheduler's business);
// only once the node has stayed NotReady for a grace period are its pods marked not Ready, so their
// endpoints go not-ready and Services stop sending new connections there. Routes never change for it:
// pods that still run stay reachable by their IPs.
import type { Node, Pod } from '../api/types.js';

/** Kubernetes' node-monitor-grace-period (40 s): an agent frozen or restarting for less churns no endpoint. */
export const DEFAULT_NODE_MONITOR_GRACE_MS = 40_000;

/** When a node's Ready condition last went to something other than True; undefined while it is Ready. */
export function notReadySince(node: Node): number | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (!ready || ready.status === 'True') return undefined;
  const at = Date.parse(ready.lastTransitionTime ?? '');
  return Number.isFinite(at) ? at : undefined;
}

const podReady = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export interface NodeLifecyclePlan {
  /** Ready pods on nodes NotReady for at least the grace period: to be marked not Ready. */
  markNotReady: Pod[];
  /** When the next node's grace period ends (epoch ms), for a sync then; undefined when none is waiting. */
  nextCheckAt?: number;
}

export function planNodeLifecycle(nodes: Node[], pods: Pod[], nowMs: number, graceMs: number): NodeLifecyclePlan {
  const expired = new Set<string>();
  let nextCheckAt: number | undefined;
  for (const n of nodes) {
    const since = notReadySince(n);
    if (since === undefined) continue;
    const due = since + graceMs;
    if (due <= nowMs) expired.add(n.metadata.name);
    else nextCheckAt = Math.min(nextCheckAt ?? due, due);
  }
  const markNotReady = pods.filter((p) => p.spec.nodeName !== undefined && expired.has(p.spec.nodeName) && podReady(p));
  return { markNotReady, nextCheckAt };
}

/** The pod with its Ready condition False (the kubelet sets it True again once it runs the pod again). */
export function withPodNotReady(pod: Pod): Pod {
  const others = (pod.status?.conditions ?? []).filter((c) => c.type !== 'Ready');
  return { ...pod, status: { ...pod.status, conditions: [...others, { type: 'Ready', status: 'False' }] } };
}
