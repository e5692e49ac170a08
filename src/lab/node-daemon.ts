// A lab node's daemon: the flatnet agent with the lab kubelet beside it, in one process in the node's
// namespace (`flatnet agent --pod-runtime lab`). The lab composes the two; the agent imports nothing of
// the lab.
import { join } from 'node:path';
import { runAgentCommand, type AgentCommandOptions } from '../agent/main.js';
import { Kubelet, type Supervisor } from './kubelet.js';

export interface NodeDaemonOptions extends AgentCommandOptions {
  /** Namespaces of this node's pods are named from it (the lab's name). */
  netnsPrefix?: string;
  /** Extra CNI plugin directories (the reference plugins), after nodeDir/bin. */
  cniBinDirs?: string[];
  supervisor: Supervisor;
}

export function runNodeDaemon(o: NodeDaemonOptions): Promise<void> {
  return runAgentCommand(o, async ({ agent, store, log }) => {
    const kubelet = new Kubelet({
      store, nodeName: o.node, nodeIP: agent.underlay.nodeIP, netnsPrefix: o.netnsPrefix ?? o.node,
      nodeDir: o.nodeDir, confFile: join(o.nodeDir, 'net.d', '10-flatnet.conflist'),
      cniBinDirs: [join(o.nodeDir, 'bin'), ...(o.cniBinDirs ?? ['/usr/lib/cni'])], binDir: join(o.nodeDir, 'bin'),
      supervisor: o.supervisor, log, maxPods: agent.config.maxPods,
    });
    await kubelet.start();
    return kubelet;
  });
}
