// `flatnet agent`: the per-node daemon a DaemonSet would run. Flags in, one agent (and in the lab, the
// lab kubelet) running until SIGTERM.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { EtcdStore } from '../store/etcd.js';
import { startAgent } from './agent.js';
import { Kubelet, type Supervisor } from '../lab/kubelet.js';

export interface AgentCommandOptions {
  etcd: string;
  node: string;
  /** Per-node directory: net.d/, ipam/, bin/, cache/, pods/. */
  nodeDir: string;
  iface?: string;
  nodeIP?: string;
  heartbeatTtlSeconds?: number;
  /** 'lab': this agent also runs the node's pods (the lab kubelet); 'none' on a host with a real runtime. */
  podRuntime?: 'lab' | 'none';
  netnsPrefix?: string;
  /** Extra CNI plugin directories (the reference plugins), after nodeDir/bin. */
  cniBinDirs?: string[];
  supervisor?: Supervisor;
}

export async function runAgentCommand(o: AgentCommandOptions): Promise<void> {
  const log = (m: string) => console.log(`${new Date().toISOString()} agent[${o.node}] ${m}`);
  for (const d of ['net.d', 'ipam', 'bin', 'cache', 'pods']) mkdirSync(join(o.nodeDir, d), { recursive: true });
  const store = new EtcdStore({ endpoints: o.etcd });
  const agent = await startAgent({
    store, nodeName: o.node, confDir: join(o.nodeDir, 'net.d'), ipamDir: join(o.nodeDir, 'ipam'),
    iface: o.iface, nodeIP: o.nodeIP, heartbeatTtlSeconds: o.heartbeatTtlSeconds, log,
  });
  let kubelet: Kubelet | undefined;
  if (o.podRuntime === 'lab') {
    if (!o.supervisor) throw new Error('the lab pod runtime needs a process supervisor');
    kubelet = new Kubelet({
      store, nodeName: o.node, nodeIP: agent.underlay.nodeIP, netnsPrefix: o.netnsPrefix ?? o.node,
      nodeDir: o.nodeDir, confFile: join(o.nodeDir, 'net.d', '10-flatnet.conflist'),
      cniBinDirs: [join(o.nodeDir, 'bin'), ...(o.cniBinDirs ?? ['/usr/lib/cni'])], binDir: join(o.nodeDir, 'bin'),
      supervisor: o.supervisor, log, maxPods: agent.config.maxPods,
    });
    await kubelet.start();
  }
  log('ready');
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  log('stopping');
  await kubelet?.stop();
  await agent.stop();
  await store.close();
}
