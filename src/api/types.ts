// Kubernetes-shaped objects, only the fields flatnet reads or writes. Their JSON is what `flatnet get -o
// json` prints and what the store holds, so names and nesting follow the Kubernetes API exactly.

export interface ObjectMeta {
  name: string;
  /** Absent for cluster-scoped kinds (Node, Namespace). */
  namespace?: string;
  uid?: string;
  /** Set only in what the lab's API serves: the key's etcd modRevision; never stored. */
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  /** The owning Deployment, for pods it made. */
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid?: string }>;
  /** Set when a pod is deleted gracefully: it is terminating, and its node's kubelet removes it. */
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
}

export interface NodeAddress { type: 'InternalIP' | 'Hostname' | 'ExternalIP'; address: string }
export interface NodeCondition { type: 'Ready'; status: 'True' | 'False' | 'Unknown'; reason?: string; message?: string; lastTransitionTime?: string }

export interface Node {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: ObjectMeta;
  spec: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: NodeAddress[]; conditions?: NodeCondition[] };
}

export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
  status?: { phase?: 'Active' | 'Terminating' };
}

export interface ContainerPort { name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' }

/** The identity and privileges a container runs with; a container's fields win over its pod's. */
export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  /** Refuse to run the container as uid 0. */
  runAsNonRoot?: boolean;
}

export interface ContainerSecurityContext extends SecurityContext {
  /** Every capability, as root unless runAsUser says otherwise. */
  privileged?: boolean;
  /** Capability names as Kubernetes spells them ("NET_RAW", or "ALL"). */
  capabilities?: { add?: string[]; drop?: string[] };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPort[];
  securityContext?: ContainerSecurityContext;
}

export interface PodSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  containers: Container[];
  nodeSelector?: Record<string, string>;
  /** Seconds between SIGTERM and SIGKILL when the pod is deleted (default 30; 0 deletes at once). */
  terminationGracePeriodSeconds?: number;
  securityContext?: SecurityContext;
}

export interface PodStatus {
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  podIP?: string;
  podIPs?: Array<{ ip: string }>;
  hostIP?: string;
  hostIPs?: Array<{ ip: string }>;
  /** Ready False carries why, as the kubelet says it (reason ContainersNotReady and a message). */
  conditions?: Array<{ type: 'Ready'; status: 'True' | 'False'; reason?: string; message?: string } | { type: 'PodScheduled'; status: 'True' | 'False'; reason?: string; message?: string }>;
  message?: string;
  /** A one-word cause when the kubelet rejected the pod (OutOfpods). */
  reason?: string;
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
  status?: PodStatus;
}

export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
  status?: { replicas?: number; readyReplicas?: number };
}

export type Protocol = 'TCP' | 'UDP';

export interface ServicePort {
  name?: string;
  protocol: Protocol;
  port: number;
  /** A container port number, or the name of a container port; defaults to `port`. */
  targetPort: number | string;
  /** Set for NodePort Services: requested in the manifest or allocated at apply. */
  nodePort?: number;
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: {
    type: 'ClusterIP' | 'NodePort';
    /** Allocated at apply unless requested; "None" for a headless Service. */
    clusterIP?: string;
    clusterIPs?: string[];
    /** Absent: the Service has no managed endpoints (none are made for it). */
    selector?: Record<string, string>;
    ports: ServicePort[];
    sessionAffinity: 'None' | 'ClientIP';
    sessionAffinityConfig?: { clientIP: { timeoutSeconds: number } };
    internalTrafficPolicy: 'Cluster' | 'Local';
    /** Only NodePort Services carry it, as Kubernetes does. */
    externalTrafficPolicy?: 'Cluster' | 'Local';
  };
}

export interface Endpoint {
  addresses: string[];
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
  nodeName?: string;
  targetRef?: { kind: 'Pod'; namespace: string; name: string; uid?: string };
}

export interface EndpointPort { name: string; protocol: Protocol; port: number }

export interface EndpointSlice {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6';
  endpoints: Endpoint[];
  ports: EndpointPort[];
}

/** A label selector: every term must hold; `{}` (or no terms) selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';

/** After defaulting (manifest.ts), `protocol` is always set; `port` absent means every port. */
export interface NetworkPolicyPort { protocol: PolicyProtocol; port?: number | string; endPort?: number }

/** One peer: ipBlock alone, or podSelector and/or namespaceSelector (both given: AND). */
export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

/** `from`/`to` absent or empty: every peer; `ports` absent or empty: every port and protocol. */
export interface NetworkPolicyIngressRule { from?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }
export interface NetworkPolicyEgressRule { to?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }

export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: ObjectMeta;
  spec: {
    podSelector: LabelSelector;
    /** Always set after defaulting: [Ingress], plus Egress when egress rules are given. */
    policyTypes: Array<'Ingress' | 'Egress'>;
    ingress?: NetworkPolicyIngressRule[];
    egress?: NetworkPolicyEgressRule[];
  };
}

/** The label the API server puts on every namespace, so namespaceSelector can pick one by name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export type KubeObject = Node | Namespace | Pod | Deployment | Service | EndpointSlice | NetworkPolicy;

/** Kubernetes' label naming the Service an EndpointSlice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** EndpointSlices grouped by the Service they belong to, keyed "namespace/name"; unlabelled ones left out. */
/** The key a Service and its EndpointSlices share: "namespace/name". */
export const serviceId = (namespace: string | undefined, name: string): string => `${namespace ?? 'default'}/${name}`;

export function slicesByService(slices: EndpointSlice[]): Map<string, EndpointSlice[]> {
  const out = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!svc) continue;
    const id = serviceId(s.metadata.namespace, svc);
    if (!out.has(id)) out.set(id, []);
    out.get(id)!.push(s);
  }
  return out;
}
export type Kind = KubeObject['kind'];

/** The cluster-wide settings the controller and every agent read (store key CLUSTER_CONFIG_KEY). */
export interface ClusterConfig {
  /** The cluster pod CIDR(s): one IPv4, optionally one IPv6. */
  clusterCIDRs: string[];
  /** Prefix length of each node's slice, per family: { ipv4: 24, ipv6: 64 }. */
  nodeCIDRMaskSize: { ipv4: number; ipv6?: number };
  /** How agents reach other nodes' pod CIDRs. */
  backend: 'host-gw' | 'vxlan' | 'auto';
  /** VXLAN network identifier and UDP port (flannel's defaults: 1 and 8472). */
  vxlan: { vni: number; port: number };
  /** Where ClusterIPs come from (Kubernetes' default 10.96.0.0/12). */
  serviceCIDR: string;
  /** NodePorts, inclusive (Kubernetes' default 30000-32767). */
  nodePortRange: { min: number; max: number };
  /** Pods per node, as every kubelet's maxPods (DEFAULT_MAX_PODS when absent). */
  maxPods?: number;
  /** The pods' MTU; 0 or absent: follow the node's interface (less the VXLAN header when it may be used). */
  mtu?: number;
}

/** The kubelet's default maxPods. */
export const DEFAULT_MAX_PODS = 110;

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  clusterCIDRs: ['10.244.0.0/16'],
  nodeCIDRMaskSize: { ipv4: 24, ipv6: 64 },
  backend: 'auto',
  vxlan: { vni: 1, port: 8472 },
  serviceCIDR: '10.96.0.0/12',
  nodePortRange: { min: 30000, max: 32767 },
};

/** The cluster config as stored, merged over the defaults (a missing key means all defaults). */
export function parseClusterConfig(value: string | undefined): ClusterConfig {
  if (value === undefined) return DEFAULT_CLUSTER_CONFIG;
  const stored = JSON.parse(value) as Partial<ClusterConfig>;
  const config: ClusterConfig = {
    ...DEFAULT_CLUSTER_CONFIG, ...stored,
    nodeCIDRMaskSize: { ...DEFAULT_CLUSTER_CONFIG.nodeCIDRMaskSize, ...stored.nodeCIDRMaskSize },
    vxlan: { ...DEFAULT_CLUSTER_CONFIG.vxlan, ...stored.vxlan },
    nodePortRange: { ...DEFAULT_CLUSTER_CONFIG.nodePortRange, ...stored.nodePortRange },
  };
  const problem = clusterConfigProblem(config);
  if (problem) throw new Error(`cluster config: ${problem}`);
  return config;
}

/** The first field whose value cannot work, named with its value; undefined when all can. */
export function clusterConfigProblem(c: ClusterConfig): string | undefined {
  const show = (v: unknown) => JSON.stringify(v);
  const whole = (v: unknown, min: number, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  const cidr = (v: unknown) => typeof v === 'string' && /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(v);
  if (!Array.isArray(c.clusterCIDRs) || c.clusterCIDRs.length < 1 || c.clusterCIDRs.length > 2) return `clusterCIDRs ${show(c.clusterCIDRs)}: expected one or two CIDRs`;
  const bad = c.clusterCIDRs.find((x) => !cidr(x));
  if (bad !== undefined) return `clusterCIDRs: ${show(bad)} is not a CIDR`;
  if (!whole(c.nodeCIDRMaskSize.ipv4, 1, 32)) return `nodeCIDRMaskSize.ipv4 ${show(c.nodeCIDRMaskSize.ipv4)}: expected a prefix length 1..32`;
  if (c.nodeCIDRMaskSize.ipv6 !== undefined && !whole(c.nodeCIDRMaskSize.ipv6, 1, 128)) return `nodeCIDRMaskSize.ipv6 ${show(c.nodeCIDRMaskSize.ipv6)}: expected a prefix length 1..128`;
  if (!['host-gw', 'vxlan', 'auto'].includes(c.backend)) return `backend ${show(c.backend)}: expected host-gw, vxlan or auto`;
  if (!whole(c.vxlan.vni, 1, 16_777_215)) return `vxlan.vni ${show(c.vxlan.vni)}: expected 1..16777215`;
  if (!whole(c.vxlan.port, 1, 65_535)) return `vxlan.port ${show(c.vxlan.port)}: expected 1..65535`;
  if (!cidr(c.serviceCIDR)) return `serviceCIDR ${show(c.serviceCIDR)}: expected a CIDR`;
  if (!whole(c.nodePortRange.min, 1, 65_535) || !whole(c.nodePortRange.max, c.nodePortRange.min, 65_535)) return `nodePortRange ${show(c.nodePortRange)}: expected 1 <= min <= max <= 65535`;
  if (c.maxPods !== undefined && !whole(c.maxPods, 1, 65_535)) return `maxPods ${show(c.maxPods)}: expected a whole number >= 1`;
  // 0 follows the interface; else at least IPv4's minimum (68), at most the largest jumbo frame.
  if (c.mtu !== undefined && c.mtu !== 0 && !whole(c.mtu, 68, 65_535)) return `mtu ${show(c.mtu)}: expected 0 (follow the interface) or 68..65535`;
  return undefined;
}

/** The pod CIDRs a Node holds: spec.podCIDRs, else spec.podCIDR, else none. */
export function podCIDRsOf(node: Node | undefined): string[] {
  if (!node) return [];
  return node.spec.podCIDRs?.length ? node.spec.podCIDRs : node.spec.podCIDR ? [node.spec.podCIDR] : [];
}
