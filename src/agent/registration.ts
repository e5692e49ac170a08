// The agent's Node object and its heartbeat. The Node key outlives the agent (its pod CIDR must not
// change across restarts); the heartbeat key lives on a lease, so an agent that dies or hangs makes its
// node NotReady within one TTL (no new pods; its endpoints go not-ready after the controller's grace
// period). Routes to the node stay: its pods still run.
import { heartbeatKey, objectKey } from '../api/keys.js';
import type { Node } from '../api/types.js';
import type { Lease, Store } from '../store/store.js';
import { LeaseLostError } from '../store/errors.js';

/**
 * Creates the Node or refreshes its addresses, keeping spec (the pod CIDR) and anything else it holds.
 * A dual-stack node has an InternalIP of each family, IPv4 first (kubelet's --node-ip=v4,v6).
 */
export async function registerNode(store: Store, name: string, nodeIP: string, nodeIPv6?: string): Promise<Node> {
  const key = objectKey('Node', name);
  for (let attempt = 0; attempt < 20; attempt++) {
    const kv = await store.get(key);
    const addresses = [
      { type: 'InternalIP' as const, address: nodeIP },
      ...(nodeIPv6 ? [{ type: 'InternalIP' as const, address: nodeIPv6 }] : []),
      { type: 'Hostname' as const, address: name },
    ];
    if (!kv) {
      const node: Node = {
        apiVersion: 'v1', kind: 'Node',
        metadata: { name, uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString(), labels: { 'kubernetes.io/hostname': name } },
        spec: {},
        status: { addresses },
      };
      if (await store.create(key, JSON.stringify(node))) return node;
      continue;
    }
    const node = JSON.parse(kv.value) as Node;
    if (JSON.stringify(node.status?.addresses) === JSON.stringify(addresses)) return node;
    node.status = { ...node.status, addresses };
    if (await store.update(key, JSON.stringify(node), kv.modRevision)) return node;
  }
  throw new Error(`node ${name}: could not register (the Node object kept changing)`);
}

export interface Heartbeat { stop(): Promise<void>; readonly lease: () => Lease | undefined }

/**
 * Keeps `heartbeatKey(name)` alive on a lease of `ttlSeconds`, renewed every third of it. A lost lease
 * (etcd unreachable longer than the TTL) is replaced by a new one as soon as the store answers again.
 */
export function startHeartbeat(store: Store, name: string, ttlSeconds: number, log: (msg: string) => void): Heartbeat {
  let lease: Lease | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const value = () => JSON.stringify({ node: name, pid: process.pid, renewTime: new Date().toISOString() });

  const beat = async (): Promise<void> => {
    try {
      if (!lease) {
        lease = await store.grantLease(ttlSeconds);
        await store.put(heartbeatKey(name), value(), { lease });
      } else {
        await lease.keepAlive();
      }
    } catch (err) {
      if (err instanceof LeaseLostError) log(`heartbeat lease expired; taking a new one`);
      else log(`heartbeat: ${(err as Error).message}`);
      lease = undefined;
    }
    if (!stopped) { timer = setTimeout(() => void beat(), lease ? (ttlSeconds * 1000) / 3 : 500); }
  };
  void beat();
  return {
    lease: () => lease,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
