// Where a lab pod runs: the namespace name the lab kubelet gives it, derived from its uid.
import type { Pod } from '../api/types.js';

export const podNetnsName = (lab: string, uid: string): string => `${lab}-p-${uid.replace(/-/g, '').slice(0, 12)}`;

/** The namespace a pod's processes run in: its own, or its node's for host-network pods. */
export function podNetns(lab: string, pod: Pod, nodeNetns: (node: string) => string | undefined): string | undefined {
  if (!pod.spec.nodeName || !pod.metadata.uid) return undefined;
  return pod.spec.hostNetwork ? nodeNetns(pod.spec.nodeName) : podNetnsName(lab, pod.metadata.uid);
}
