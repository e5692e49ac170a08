// `flatnet controller --datastore kubernetes`: only Node IPAM. In a real cluster kube-controller-manager
// allocates ClusterIPs and EndpointSlices; when it does not allocate node CIDRs (no --allocate-node-cidrs)
// this loop gives every Node without spec.podCIDR(s) the lowest free slice of the cluster CIDR, as the
// etcd controller does, and PATCHes spec.podCIDR + spec.podCIDRs. A set CIDR is never changed.
import type { KubeConfig } from '@kubernetes/client-node';
import { podCIDRsOf, type ClusterConfig, type Node } from '../api/types.js';
import { InformerCache, RESOURCES } from '../kube/informer-cache.js';
import { KubeApiError, kubeRequest } from '../kube/connect.js';
import { SyncRunner } from '../store/runner.js';
import { timedControllerStep } from '../metrics/registry.js';
import { allocateNodeCIDRs } from './podcidr.js';

export interface KubePodCIDRController {
  /** Resolves when no pass is pending (tests wait on it). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** The patch a Node gets: both fields (podCIDR for old readers), guarded by the version it was decided on. */
export function podCIDRPatch(node: Node, cidrs: string[]): object {
  return { metadata: { resourceVersion: node.metadata.resourceVersion }, spec: { podCIDR: cidrs[0], podCIDRs: cidrs } };
}

export async function startKubePodCIDRController(o: { kc: KubeConfig; config: ClusterConfig; log: (m: string) => void }): Promise<KubePodCIDRController> {
  const nodes = new InformerCache<Node>(o.kc, RESOURCES.nodes, { log: o.log });
  // Patched but not yet seen back through the watch: counted as held, so no pass hands them out twice.
  const patched = new Map<string, string[]>();
  const reported = new Set<string>();

  const pass = async (): Promise<void> => {
    const all = nodes.values();
    for (const n of all) if (podCIDRsOf(n).length) patched.delete(n.metadata.name);
    const allocation = allocateNodeCIDRs(o.config, all.map((n) => ({ name: n.metadata.name, podCIDRs: podCIDRsOf(n).length ? podCIDRsOf(n) : patched.get(n.metadata.name) ?? [] })));
    for (const f of allocation.failures) {
      if (!reported.has(f.message)) { reported.add(f.message); o.log(f.message); }
    }
    let failed: unknown;
    for (const n of all) {
      const name = n.metadata.name;
      const cidrs = allocation.get(name);
      if (podCIDRsOf(n).length || patched.has(name) || !cidrs) continue;
      try {
        await kubeRequest(o.kc, { method: 'PATCH', path: `/api/v1/nodes/${encodeURIComponent(name)}`, body: podCIDRPatch(n, cidrs), contentType: 'application/strategic-merge-patch+json' });
        patched.set(name, cidrs);
        o.log(`node ${name}: pod CIDR ${cidrs.join(', ')}`);
      } catch (err) {
        // 409: the Node changed since this pass read it; the next pass decides again from the new one.
        if (!(err instanceof KubeApiError && err.status === 409)) failed = err;
        else o.log(`node ${name}: changed meanwhile; deciding again`);
      }
    }
    if (failed) throw failed;
  };

  const runner = new SyncRunner(() => timedControllerStep('pod CIDRs', pass), { periodMs: 60_000, retryMs: 2000, onError: (err) => o.log(`pod CIDRs: ${(err as Error).message}`) });
  nodes.onChange(() => runner.poke());
  await nodes.start();
  runner.start();
  return {
    idle: () => runner.idle(),
    async stop() { runner.stop(); await nodes.stop(); },
  };
}
