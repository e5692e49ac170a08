// A lab node's daemon: the flatnet agent with the lab kubelet beside it, in one process in the node's
// namespace (`flatnet agent --pod-runtime lab`). The lab composes the two; the agent imports nothing of
// the lab. With `--datastore kubernetes` the agent reads the lab's Kubernetes API (on the control-plane
// endpoint, lab/control-plane.ts) while the lab side here plays the real kubelet's part: it registers the
// Node and keeps its heartbeat in the lab's etcd, before the agent (which waits for its Node) starts.
import { join } from 'node:path';
import { runAgentCommand, type AgentCommandOptions } from '../agent/main.js';
import type { Agent } from '../agent/agent.js';
import { EtcdStore } from '../store/etcd.js';
import type { Store } from '../store/store.js';
import { Netns } from '../kernel/netns.js';
import { findUnderlay } from '../agent/underlay.js';
import { registerNode, startHeartbeat } from '../agent/registration.js';
import { Kubelet, type Supervisor } from './kubelet.js';

export interface NodeDaemonOptions extends AgentCommandOptions {
  /** Namespaces of this node's pods are named from it (the lab's name). */
  netnsPrefix?: string;
  /** Extra CNI plugin directories (the reference plugins), after nodeDir/bin. */
  cniBinDirs?: string[];
  supervisor: Supervisor;
}

export async function runNodeDaemon(o: NodeDaemonOptions): Promise<void> {
  if (o.datastore !== 'kubernetes') {
    return runAgentCommand(o, async ({ agent, store, log }) => startKubelet(o, agent, store!, log));
  }
  if (!o.etcd || !o.kubeconfig) throw new Error('a lab node in kubernetes mode needs --etcd (its kubelet) and --kubeconfig');
  const log = (m: string) => console.log(`${new Date().toISOString()} node[${o.node}] ${m}`);
  const store = new EtcdStore({ endpoints: o.etcd });
  try {
    const underlay = await findUnderlay(Netns.current(), { ifname: o.iface, nodeIP: o.nodeIP });
    await registerNode(store, o.node, underlay.nodeIP, underlay.nodeIPv6);
    const heartbeat = startHeartbeat(store, o.node, o.heartbeatTtlSeconds ?? 10, log);
    try {
      await runAgentCommand(o, async ({ agent, log: agentLog }) => startKubelet(o, agent, store, agentLog));
    } finally { await heartbeat.stop(); }
  } finally { await store.close(); }
}

async function startKubelet(o: NodeDaemonOptions, agent: Agent, store: Store, log: (m: string) => void): Promise<Kubelet> {
  const kubelet = new Kubelet({
    store, nodeName: o.node, nodeIP: agent.underlay.nodeIP, netnsPrefix: o.netnsPrefix ?? o.node,
    nodeDir: o.nodeDir, confFile: join(o.nodeDir, 'net.d', '10-flatnet.conflist'),
    cniBinDirs: [join(o.nodeDir, 'bin'), ...(o.cniBinDirs ?? ['/usr/lib/cni'])], binDir: join(o.nodeDir, 'bin'),
    supervisor: o.supervisor, log, maxPods: agent.config.maxPods,
  });
  await kubelet.start();
  return kubelet;
}
