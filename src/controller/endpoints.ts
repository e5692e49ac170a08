// EndpointSlices from Services and pods, pure: what kube-controller-manager's EndpointSlice controller
// decides. Pods a Service selects whose target ports resolve the same way share one slice; a named
// targetPort resolves per pod through its containers' ports, so pods that name it differently (or
// not at all) land in another slice (or none).
import { createHash } from 'node:crypto';
import { isTerminating } from '../api/termination.js';
import { SERVICE_NAME_LABEL, type Endpoint, type EndpointPort, type EndpointSlice, type Pod, type Service } from '../api/types.js';

export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'flatnet-controller';

const ns = (o: { metadata: { namespace?: string } }) => o.metadata.namespace ?? 'default';

export function selects(service: Service, pod: Pod): boolean {
  const selector = service.spec.selector;
  if (!selector || ns(service) !== ns(pod)) return false;
  const labels = pod.metadata.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The Service's ports as this pod serves them, or undefined when a named targetPort is not one of its ports. */
function resolvePorts(service: Service, pod: Pod): EndpointPort[] | undefined {
  const out: EndpointPort[] = [];
  for (const p of service.spec.ports) {
    let port: number | undefined;
    if (typeof p.targetPort === 'number') port = p.targetPort;
    else port = pod.spec.containers.flatMap((c) => c.ports ?? []).find((cp) => cp.name === p.targetPort && (cp.protocol ?? 'TCP') === p.protocol)?.containerPort;
    if (port === undefined) return undefined;
    out.push({ name: p.name ?? '', protocol: p.protocol, port });
  }
  return out;
}

/**
 * As the EndpointSlice controller reports a pod: `serving` is its readiness; a terminating pod is never
 * `ready` (no new connections) but stays listed, so a proxy can fall back to it while it drains.
 */
function endpointOf(pod: Pod): Endpoint {
  const serving = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const terminating = isTerminating(pod);
  const e: Endpoint = {
    addresses: [pod.status!.podIP!],
    conditions: { ready: serving && !terminating, serving, terminating },
    targetRef: { kind: 'Pod', namespace: ns(pod), name: pod.metadata.name, ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}) },
  };
  if (pod.spec.nodeName) e.nodeName = pod.spec.nodeName;
  return e;
}

/** A short stable name part for a port mapping, so a slice keeps its name while its ports do. */
function portsHash(ports: EndpointPort[]): string {
  return createHash('sha256').update(JSON.stringify(ports)).digest('hex').slice(0, 5);
}

/**
 * The slices a Service should have: none without a selector (its endpoints are not managed); otherwise
 * one per distinct port mapping of the pods it selects that have an IP and are not finished, and one
 * empty slice when it selects none (so readers see "no endpoints" rather than "not computed yet").
 * Endpoints are sorted by address, so equal inputs give equal slices.
 */
export function desiredSlices(service: Service, pods: Pod[]): EndpointSlice[] {
  if (!service.spec.selector) return [];
  const groups = new Map<string, { ports: EndpointPort[]; endpoints: Endpoint[] }>();
  for (const pod of pods) {
    if (!selects(service, pod) || !pod.status?.podIP) continue;
    if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') continue;
    const ports = resolvePorts(service, pod);
    if (!ports) continue;
    const key = JSON.stringify(ports);
    if (!groups.has(key)) groups.set(key, { ports, endpoints: [] });
    groups.get(key)!.endpoints.push(endpointOf(pod));
  }
  if (groups.size === 0) {
    const ports = service.spec.ports.map((p) => ({ name: p.name ?? '', protocol: p.protocol, port: typeof p.targetPort === 'number' ? p.targetPort : p.port }));
    groups.set('', { ports: service.spec.ports.some((p) => typeof p.targetPort === 'string') ? [] : ports, endpoints: [] });
  }
  return [...groups.values()].map(({ ports, endpoints }) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service.metadata.name}-${portsHash(ports)}`,
      namespace: ns(service),
      labels: { [SERVICE_NAME_LABEL]: service.metadata.name, [MANAGED_BY_LABEL]: MANAGED_BY },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: service.metadata.name, ...(service.metadata.uid ? { uid: service.metadata.uid } : {}) }],
    },
    addressType: 'IPv4',
    endpoints: endpoints.sort((a, b) => compareIPv4(a.addresses[0], b.addresses[0])),
    ports,
  }));
}

function compareIPv4(a: string, b: string): number {
  const n = (ip: string) => ip.split('.').reduce((acc, x) => acc * 256 + Number(x), 0);
  return n(a) - n(b);
}

/** Whether a stored slice already says what `desired` says (server-set metadata aside). */
export function sameSlice(stored: EndpointSlice, desired: EndpointSlice): boolean {
  const body = (s: EndpointSlice) => JSON.stringify([s.metadata.labels, s.addressType, s.endpoints, s.ports]);
  return body(stored) === body(desired);
}

/** The Service a slice was made for, when this controller made it. */
export function sliceService(slice: EndpointSlice): string | undefined {
  const labels = slice.metadata.labels ?? {};
  return labels[MANAGED_BY_LABEL] === MANAGED_BY ? labels[SERVICE_NAME_LABEL] : undefined;
}
