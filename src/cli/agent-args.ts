// `flatnet agent`'s flags to the agent's options: the datastore (etcd, the lab's default, or kubernetes,
// as deploy/flatnet.yaml's DaemonSet runs it), the node's name (--node, else $NODE_NAME as the DaemonSet
// sets it from spec.nodeName) and the rest. Pure but for its lazy imports, so a test feeds it the manifest.
import type { AgentCommandOptions } from '../agent/main.js';
import type { Values } from './options.js';
import { UsageError } from './usage.js';

export interface AgentArgs { runtime: 'lab' | 'none'; options: AgentCommandOptions }

export async function agentCommandOptions(values: Values, env: NodeJS.ProcessEnv): Promise<AgentArgs> {
  const datastore = values.datastore ?? 'etcd';
  if (datastore !== 'etcd' && datastore !== 'kubernetes') throw new UsageError(`--datastore "${datastore}": expected etcd or kubernetes`);
  const node = values.node ?? env.NODE_NAME;
  if (!node || !values['node-dir']) throw new UsageError('agent needs --node (or $NODE_NAME) and --node-dir');
  if (datastore === 'etcd' && !values.etcd) throw new UsageError('agent --datastore etcd needs --etcd');
  if (datastore === 'etcd' && (values.config || values.kubeconfig)) throw new UsageError('--config and --kubeconfig are for --datastore kubernetes (with etcd the config is in the store)');
  if (datastore === 'kubernetes' && !values.config) throw new UsageError('agent --datastore kubernetes needs --config FILE (the network config, net-conf.json)');
  const runtime = values['pod-runtime'] ?? 'none';
  if (runtime !== 'lab' && runtime !== 'none') throw new UsageError(`--pod-runtime "${runtime}": expected lab or none`);
  // The lab kubelet reads and writes flatnet's etcd schema: beside a kubernetes-mode agent it still needs it.
  if (runtime === 'lab' && datastore === 'kubernetes' && (!values.etcd || !values.kubeconfig)) throw new UsageError('--pod-runtime lab with --datastore kubernetes needs --etcd (the lab kubelet\'s store) and --kubeconfig');
  const { parseDisabledFeatures } = await import('../agent/features/index.js');
  let features;
  try { features = parseDisabledFeatures(values.disable); } catch (err) { throw new UsageError(`--disable: ${(err as Error).message}`); }
  const healthListen = values['health-listen'];
  if (healthListen && healthListen !== 'off') {
    const { parseListen } = await import('../agent/health.js');
    try { parseListen(healthListen); } catch (err) { throw new UsageError((err as Error).message); }
  }
  const ttl = values['heartbeat-ttl'];
  const options: AgentCommandOptions = {
    datastore, node, nodeDir: values['node-dir'], iface: values.iface, nodeIP: values['node-ip'],
    heartbeatTtlSeconds: ttl ? Number(ttl) : undefined, features, healthListen,
    ...(datastore === 'etcd' ? { etcd: values.etcd } : { kubeconfig: values.kubeconfig, config: values.config, ...(runtime === 'lab' ? { etcd: values.etcd } : {}) }),
  };
  return { runtime, options };
}
