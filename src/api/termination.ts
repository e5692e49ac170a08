// Graceful pod deletion, as the API server does it: a pod bound to a node is not removed at once but
// marked terminating (deletionTimestamp and its grace period). The node's kubelet then sends its
// containers SIGTERM, SIGKILL after the grace period, tears down its network and removes the object.
// Meanwhile the EndpointSlice controller lists it as terminating, so proxies stop sending it new
// connections while it drains. A pod bound to no node, or deleted with a grace period of 0, goes at once.
import type { Pod } from './types.js';

export const DEFAULT_GRACE_SECONDS = 30;

export const isTerminating = (pod: Pod): boolean => pod.metadata.deletionTimestamp !== undefined;

/**
 * The pod as a graceful delete leaves it: marked terminating, or undefined when it is to be removed
 * now. As in Kubernetes, deletionTimestamp is when the pod will be gone at the latest: `nowMs` plus the
 * grace period. `graceSeconds` overrides the pod's terminationGracePeriodSeconds (kubectl
 * --grace-period); deleting a terminating pod again can only bring that moment closer.
 */
export function markTerminating(pod: Pod, nowMs: number, graceSeconds?: number): Pod | undefined {
  const grace = graceSeconds ?? pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  if (!pod.spec.nodeName || grace === 0) return undefined;
  const at = nowMs + grace * 1000;
  if (isTerminating(pod) && Date.parse(pod.metadata.deletionTimestamp!) <= at) return pod;
  return { ...pod, metadata: { ...pod.metadata, deletionTimestamp: new Date(at).toISOString(), deletionGracePeriodSeconds: grace } };
}

/** Milliseconds left of a terminating pod's grace period at `nowMs` (0 when it ran out). */
export function graceLeftMs(pod: Pod, nowMs: number): number {
  const at = Date.parse(pod.metadata.deletionTimestamp ?? '');
  return Number.isNaN(at) ? 0 : Math.max(0, at - nowMs);
}
