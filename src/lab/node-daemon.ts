// A lab node's daemon: the flatnet agent with the lab kubelet beside it, in one process in the node's
// namespace (`flatnet agent --pod-runtime lab`). The lab composes the two; the agent imports nothing of
// the lab. When the agent reads the Kubernetes API (datastore kubernetes), the Node's registration and
// heartbeat are the kubelet's job, as in a real cluster: the lab side does them here, before the agent
// (which waits for its Node) starts.
import { join } from 'node:path';
import { runAgentCommand, type AgentCommandOptions } from '../agent/main.js';
import { findUnderlay } from '../agent/underlay.js';
import { registerNode, startHeartbeat, type Heartbeat } from '../agent/registration.js';
import { Netns } from '../kernel/netns.js';
import { EtcdStore } from '../store/etcd.js';
import { Kubelet, type Supervisor } from './kubelet.js';

export interface NodeDaemonOptions extends AgentCommandOptions {
  /** Namespaces of this node's pods are named from it (the lab's name). */
  netnsPrefix?: string;
  /** Extra CNI plugin directories (the reference plugins), after nodeDir/bin. */
  cniBinDirs?: string[];
  supervisor: Supervisor;
  datastore?: 'etcd' | 'kubernetes';
}

export async function runNodeDaemon(o: NodeDaemonOptions): Promise<void> {
  const log = (m: string) => console.log(`${new Date().toISOString()} kubelet[${o.node}] ${m}`);
  // The lab kubelet always works on the lab's etcd, whatever the agent reads.
  const store = new EtcdStore({ endpoints: o.etcd });
  let heartbeat: Heartbeat | undefined;
  try {
    if (o.datastore === 'kubernetes') {
      const underlay = await findUnderlay(Netns.current(), { ifname: o.iface, nodeIP: o.nodeIP });
      await registerNode(store, o.node, underlay.nodeIP, underlay.nodeIPv6);
      heartbeat = startHeartbeat(store, o.node, o.heartbeatTtlSeconds ?? 10, log);
    }
    await runAgentCommand(o, async ({ agent }) => {
      const kubelet = new Kubelet({
        store, nodeName: o.node, nodeIP: agent.underlay.nodeIP, netnsPrefix: o.netnsPrefix ?? o.node,
        nodeDir: o.nodeDir, confFile: join(o.nodeDir, 'net.d', '10-flatnet.conflist'),
        cniBinDirs: [join(o.nodeDir, 'bin'), ...(o.cniBinDirs ?? ['/usr/lib/cni'])], binDir: join(o.nodeDir, 'bin'),
        supervisor: o.supervisor, log, maxPods: agent.config.maxPods,
      });
      await kubelet.start();
      return kubelet;
    });
  } finally {
    await heartbeat?.stop();
    await store.close();
  }
}
