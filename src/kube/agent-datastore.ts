// The agent's datastore in a real cluster: the Kubernetes API. The kubelet registers the Node, the
// cluster (kube-controller-manager or `flatnet controller`) gives it its pod CIDRs; the agent reads
// through informers and writes one thing: its Node's NetworkUnavailable condition, once its routes are up.
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterConfig } from '../api/types.js';
import { waitForOwnNode, type AgentDatastore } from '../agent/datastore.js';
import { kubeRequest } from './connect.js';
import { KubeView } from './view.js';

/** The strategic-merge patch of nodes/status flannel also sends: conditions merge by their type. */
export function networkAvailablePatch(now: Date): object {
  const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    status: {
      conditions: [{
        type: 'NetworkUnavailable', status: 'False', reason: 'FlatnetIsUp',
        message: 'flatnet is running on this node', lastTransitionTime: at, lastHeartbeatTime: at,
      }],
    },
  };
}

export function kubeDatastore(kc: KubeConfig, config: ClusterConfig, opts: { retryMs?: number; log?: (m: string) => void } = {}): AgentDatastore {
  const view = new KubeView(kc, { log: opts.log });
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  return {
    kind: 'kubernetes', view,
    async clusterConfig() { return config; },
    async register(nodeName, _underlay, log) {
      await view.start();
      await waitForOwnNode(view, nodeName, log);
    },
    markNetworkAvailable(nodeName, log) {
      const path = `/api/v1/nodes/${encodeURIComponent(nodeName)}/status`;
      // Retried until it lands: the API may be down for a while; the routes work meanwhile.
      return new Promise<void>((resolve) => {
        const attempt = (): void => {
          retry = undefined;
          if (closed) { resolve(); return; }
          kubeRequest(kc, { method: 'PATCH', path, body: networkAvailablePatch(new Date()), contentType: 'application/strategic-merge-patch+json' }).then(
            () => { log(`node ${nodeName}: NetworkUnavailable=False`); resolve(); },
            (err: unknown) => {
              log(`node ${nodeName}: marking the network available failed (${(err as Error).message}); retrying`);
              retry = setTimeout(attempt, opts.retryMs ?? 5000);
            },
          );
        };
        attempt();
      });
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await view.stop();
    },
  };
}
