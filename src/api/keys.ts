// Where each object lives in the store. Kubernetes' own layout (/registry/<resource>/<ns>/<name>), so an
// operator reading etcd with etcdctl finds things where they expect them.
import type { Kind } from './types.js';

export const REGISTRY = '/registry/';

const RESOURCE: Record<Kind, { resource: string; namespaced: boolean }> = {
  Node: { resource: 'nodes', namespaced: false },
  Namespace: { resource: 'namespaces', namespaced: false },
  Pod: { resource: 'pods', namespaced: true },
  Deployment: { resource: 'deployments', namespaced: true },
  Service: { resource: 'services/specs', namespaced: true },
  EndpointSlice: { resource: 'endpointslices', namespaced: true },
  NetworkPolicy: { resource: 'networkpolicies', namespaced: true },
};

export const isNamespaced = (kind: Kind): boolean => RESOURCE[kind].namespaced;

/** The prefix holding every object of a kind (all namespaces), or of one namespace. */
export function kindPrefix(kind: Kind, namespace?: string): string {
  const r = RESOURCE[kind];
  return r.namespaced && namespace !== undefined ? `${REGISTRY}${r.resource}/${namespace}/` : `${REGISTRY}${r.resource}/`;
}

export function objectKey(kind: Kind, name: string, namespace?: string): string {
  const r = RESOURCE[kind];
  if (r.namespaced) {
    if (!namespace) throw new Error(`${kind} "${name}" needs a namespace`);
    return `${REGISTRY}${r.resource}/${namespace}/${name}`;
  }
  return `${REGISTRY}${r.resource}/${name}`;
}

export const NODE_PREFIX = kindPrefix('Node');
export const POD_PREFIX = kindPrefix('Pod');
export const NAMESPACE_PREFIX = kindPrefix('Namespace');
export const DEPLOYMENT_PREFIX = kindPrefix('Deployment');
export const SERVICE_PREFIX = kindPrefix('Service');
export const ENDPOINTSLICE_PREFIX = kindPrefix('EndpointSlice');
export const NETWORKPOLICY_PREFIX = kindPrefix('NetworkPolicy');

/** One key per ClusterIP and per NodePort in use, created in the same transaction as the Service, so
 * two applies racing for one address cannot both win (the second's create of the key fails). */
export const CLUSTER_IP_PREFIX = '/flatnet/allocations/clusterips/';
export const NODE_PORT_PREFIX = '/flatnet/allocations/nodeports/';
export const clusterIPKey = (ip: string): string => `${CLUSTER_IP_PREFIX}${ip}`;
export const nodePortKey = (port: number): string => `${NODE_PORT_PREFIX}${port}`;

/** Cluster settings (ClusterConfig JSON), written by `lab up` or the operator before agents start. */
export const CLUSTER_CONFIG_KEY = '/flatnet/config/cluster';
/** One key per live agent, attached to its heartbeat lease: the key vanishing is the node going NotReady. */
export const HEARTBEAT_PREFIX = '/flatnet/heartbeats/';
export const heartbeatKey = (node: string): string => `${HEARTBEAT_PREFIX}${node}`;
/** The node a heartbeat key belongs to (the inverse of heartbeatKey). */
export const heartbeatNode = (key: string): string => key.slice(HEARTBEAT_PREFIX.length);
/** The controller leader's key, attached to the leader's lease. */
export const CONTROLLER_LEADER_KEY = '/flatnet/leader/controller';

/** Kinds flatnet only stores for others (ServiceAccounts, RBAC, ConfigMaps...): /registry/<plural>/[<ns>/]<name>. */
export const registryPrefix = (resource: string, namespace?: string): string =>
  namespace !== undefined ? `${REGISTRY}${resource}/${namespace}/` : `${REGISTRY}${resource}/`;
export const registryKey = (resource: string, name: string, namespace?: string): string => `${registryPrefix(resource, namespace)}${name}`;
