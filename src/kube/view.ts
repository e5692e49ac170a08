// The agent's view of the cluster through the Kubernetes API: the same six kinds, under the same keys,
// as the etcd ClusterView, so no feature knows which datastore it reads. One informer per kind.
import type { KubeConfig } from '@kubernetes/client-node';
import type { AgentView } from '../agent/cluster-view.js';
import type { EndpointSlice, Namespace, NetworkPolicy, Node, Pod, Service } from '../api/types.js';
import { InformerCache, RESOURCES, type InformerCacheOptions } from './informer-cache.js';

export class KubeView implements AgentView {
  readonly nodes: InformerCache<Node>;
  readonly services: InformerCache<Service>;
  readonly endpointSlices: InformerCache<EndpointSlice>;
  readonly pods: InformerCache<Pod>;
  readonly namespaces: InformerCache<Namespace>;
  readonly networkPolicies: InformerCache<NetworkPolicy>;
  private started?: Promise<void>;

  constructor(kc: KubeConfig, opts: InformerCacheOptions = {}) {
    this.nodes = new InformerCache<Node>(kc, RESOURCES.nodes, opts);
    this.services = new InformerCache<Service>(kc, RESOURCES.services, opts);
    this.endpointSlices = new InformerCache<EndpointSlice>(kc, RESOURCES.endpointSlices, opts);
    this.pods = new InformerCache<Pod>(kc, RESOURCES.pods, opts);
    this.namespaces = new InformerCache<Namespace>(kc, RESOURCES.namespaces, opts);
    this.networkPolicies = new InformerCache<NetworkPolicy>(kc, RESOURCES.networkPolicies, opts);
  }

  private get all(): Array<InformerCache<any>> {
    return [this.nodes, this.services, this.endpointSlices, this.pods, this.namespaces, this.networkPolicies];
  }

  /** Resolves once every kind has listed (a feature never syncs from half a cluster). Once only. */
  start(): Promise<void> {
    this.started ??= Promise.all(this.all.map((c) => c.start())).then(() => undefined);
    return this.started;
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((c) => c.stop()));
  }
}
