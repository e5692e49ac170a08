// The agent's one copy of the cluster: a Mirror per kind the features read, listed and watched once for
// all of them. Features read it and subscribe to `onChange`; none keeps its own watch. `start()`
// resolves only when every initial listing has arrived, so no feature syncs from half a cluster (a
// policy table built before the Pods arrived would isolate nobody; a proxy before the slices, drop).
import { ENDPOINTSLICE_PREFIX, NAMESPACE_PREFIX, NETWORKPOLICY_PREFIX, NODE_PREFIX, POD_PREFIX, SERVICE_PREFIX } from '../api/keys.js';
import type { EndpointSlice, Namespace, NetworkPolicy, Node, Pod, Service } from '../api/types.js';
import { Mirror, jsonDecode, type MirrorChange } from '../store/mirror.js';
import type { Store } from '../store/store.js';

/**
 * What a feature reads of one kind: the objects by their store key ("/registry/pods/ns/name"), and
 * every change after the listing. The etcd Mirror is one; a view over the Kubernetes API (issue 12)
 * must be another, so the features do not know which datastore they read.
 */
export interface ObjectCache<T> {
  get(key: string): T | undefined;
  values(): T[];
  readonly size: number;
  onChange(fn: (changes: MirrorChange<T>[]) => void): unknown;
}

/** The kinds the agent's features read, each listed whole before any of them syncs. */
export interface AgentView {
  readonly nodes: ObjectCache<Node>;
  readonly services: ObjectCache<Service>;
  readonly endpointSlices: ObjectCache<EndpointSlice>;
  readonly pods: ObjectCache<Pod>;
  readonly namespaces: ObjectCache<Namespace>;
  readonly networkPolicies: ObjectCache<NetworkPolicy>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The agent's view over flatnet's own etcd schema. */
export class ClusterView implements AgentView {
  readonly nodes: Mirror<Node>;
  readonly services: Mirror<Service>;
  readonly endpointSlices: Mirror<EndpointSlice>;
  readonly pods: Mirror<Pod>;
  readonly namespaces: Mirror<Namespace>;
  readonly networkPolicies: Mirror<NetworkPolicy>;
  private started?: Promise<void>;

  constructor(store: Store) {
    this.nodes = new Mirror<Node>(store, NODE_PREFIX, jsonDecode);
    this.services = new Mirror<Service>(store, SERVICE_PREFIX, jsonDecode);
    this.endpointSlices = new Mirror<EndpointSlice>(store, ENDPOINTSLICE_PREFIX, jsonDecode);
    this.pods = new Mirror<Pod>(store, POD_PREFIX, jsonDecode);
    this.namespaces = new Mirror<Namespace>(store, NAMESPACE_PREFIX, jsonDecode);
    this.networkPolicies = new Mirror<NetworkPolicy>(store, NETWORKPOLICY_PREFIX, jsonDecode);
  }

  private get all(): Array<Mirror<unknown>> {
    return [this.nodes, this.services, this.endpointSlices, this.pods, this.namespaces, this.networkPolicies] as Array<Mirror<unknown>>;
  }

  /** Lists every kind and starts the watches; resolves when all listings have arrived. Once only. */
  start(): Promise<void> {
    this.started ??= Promise.all(this.all.map((m) => m.start())).then(() => undefined);
    return this.started;
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((m) => m.stop()));
  }
}
