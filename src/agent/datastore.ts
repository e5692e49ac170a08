// Where the agent's cluster comes from: flatnet's own etcd schema, or the Kubernetes API. The agent wires
// against this one interface; the features read only its `view`, so none knows which one it reads.
import { readFileSync } from 'node:fs';
import { objectKey } from '../api/keys.js';
import { parseClusterConfig, type ClusterConfig } from '../api/types.js';
import type { Store } from '../store/store.js';
import { ClusterView, type AgentView } from './cluster-view.js';
import { readClusterConfig } from './node-setup.js';
import { registerNode, startHeartbeat, type Heartbeat } from './registration.js';
import type { Underlay } from './underlay.js';

export interface AgentDatastore {
  readonly kind: 'etcd' | 'kubernetes';
  readonly view: AgentView;
  /** The cluster's network settings (CIDRs, backend, MTU). */
  clusterConfig(log: (m: string) => void): Promise<ClusterConfig>;
  /** Makes this node known and waits until the view holds its Node. */
  register(nodeName: string, underlay: Underlay, log: (m: string) => void): Promise<void>;
  /** Called once the node's routes are up: tells the cluster pods may be scheduled here. */
  markNetworkAvailable(nodeName: string, log: (m: string) => void): Promise<void>;
  /** Stops what register and the view started (not the connection: its owner closes it). */
  close(): Promise<void>;
}

/** flatnet's own schema: the agent registers its Node and keeps a heartbeat lease (its Ready). */
export function etcdDatastore(store: Store, heartbeatTtlSeconds = 10): AgentDatastore {
  const view = new ClusterView(store);
  let heartbeat: Heartbeat | undefined;
  return {
    kind: 'etcd', view,
    clusterConfig: (log) => readClusterConfig(store, log),
    async register(nodeName, underlay, log) {
      await registerNode(store, nodeName, underlay.nodeIP, underlay.nodeIPv6);
      heartbeat = startHeartbeat(store, nodeName, heartbeatTtlSeconds, log);
    },
    // The heartbeat is the node's readiness here; there is no NetworkUnavailable condition to clear.
    async markNetworkAvailable() {},
    async close() { await heartbeat?.stop(); await view.stop(); },
  };
}

/** The ConfigMap's net-conf.json (mounted as a file): ClusterConfig JSON, validated. */
export function readConfigFile(file: string): ClusterConfig {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) { throw new Error(`--config ${file}: ${(err as Error).message}`); }
  try { return parseClusterConfig(text); } catch (err) { throw new Error(`--config ${file}: ${(err as Error).message}`); }
}

/** Resolves once `view.nodes` holds `nodeName`'s Node. */
export function waitForOwnNode(view: AgentView, nodeName: string, log: (m: string) => void): Promise<void> {
  const key = objectKey('Node', nodeName);
  if (view.nodes.get(key)) return Promise.resolve();
  log(`node ${nodeName}: waiting for its Node object (the kubelet registers it)`);
  return new Promise((resolve) => { view.nodes.onChange(() => { if (view.nodes.get(key)) resolve(); }); });
}
