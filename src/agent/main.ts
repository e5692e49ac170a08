// `flatnet agent`: the per-node daemon a DaemonSet would run. Flags in, one agent running until SIGTERM.
// Whatever else runs beside it on the node (the lab's kubelet, lab/node-daemon.ts) comes in as a
// companion, so the agent knows nothing of who composes it.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { EtcdStore } from '../store/etcd.js';
import type { Store } from '../store/store.js';
import { startAgent, type Agent } from './agent.js';
import type { FeatureSwitches } from './features/index.js';

export interface AgentCommandOptions {
  etcd: string;
  node: string;
  /** Per-node directory: net.d/, ipam/, bin/, cache/, pods/. */
  nodeDir: string;
  iface?: string;
  nodeIP?: string;
  heartbeatTtlSeconds?: number;
  /** Optional features turned off (`--disable`). */
  features?: FeatureSwitches;
}

/** Something started after the agent and stopped before it (the lab kubelet). */
export interface Companion { stop(): Promise<void> }
export type StartCompanion = (c: { agent: Agent; store: Store; log: (m: string) => void }) => Promise<Companion>;

export async function runAgentCommand(o: AgentCommandOptions, companion?: StartCompanion): Promise<void> {
  const log = (m: string) => console.log(`${new Date().toISOString()} agent[${o.node}] ${m}`);
  for (const d of ['net.d', 'ipam', 'bin', 'cache', 'pods']) mkdirSync(join(o.nodeDir, d), { recursive: true });
  const store = new EtcdStore({ endpoints: o.etcd });
  const agent = await startAgent({
    store, nodeName: o.node, confDir: join(o.nodeDir, 'net.d'), ipamDir: join(o.nodeDir, 'ipam'),
    iface: o.iface, nodeIP: o.nodeIP, heartbeatTtlSeconds: o.heartbeatTtlSeconds, features: o.features, log,
  });
  const beside = await companion?.({ agent, store, log });
  log('ready');
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  log('stopping');
  await beside?.stop();
  await agent.stop();
  await store.close();
}
