// The kubelet's admission, as Kubernetes' kubelet does it before running a pod bound to its node: a
// node past its maxPods rejects the pod (phase Failed, reason OutOfpods) instead of overloading the
// machine; so does a pod with more containers than the lab runs. The scheduler never binds such a
// pod; this catches pods bound by hand (spec.nodeName) or written to the store directly.
import { MAX_CONTAINERS } from '../api/names.js';
import { DEFAULT_MAX_PODS, type Pod } from '../api/types.js';

export interface Rejection { reason: string; message: string }

/** Why this node refuses the pod, given how many pods it already runs; undefined when it admits it. */
export function admissionProblem(pod: Pod, running: number, maxPods = DEFAULT_MAX_PODS): Rejection | undefined {
  const containers = pod.spec.containers.length;
  if (containers > MAX_CONTAINERS) {
    return { reason: 'TooManyContainers', message: `Pod was rejected: it has ${containers} containers; this kubelet runs at most ${MAX_CONTAINERS} per pod` };
  }
  if (running >= maxPods) return { reason: 'OutOfpods', message: `Pod was rejected: Node didn't have enough resource: pods (maxPods ${maxPods})` };
  return undefined;
}
