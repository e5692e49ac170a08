// flatnet: the command line. Argument parsing and output only; the work happens in the subsystems.
import { parseArgs } from 'node:util';
import { UsageError, USAGE } from './usage.js';
import { runServeCommand, runProbeCommand } from '../workload/index.js';
import { runProbeWorker } from '../workload/probe-worker.js';

export const OPTIONS = {
  lab: { type: 'string' },
  'state-dir': { type: 'string' },
  file: { type: 'string', short: 'f', multiple: true },
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  output: { type: 'string', short: 'o' },
  container: { type: 'string', short: 'c' },
  segment: { type: 'string' },
  keep: { type: 'boolean' },
  'grace-period': { type: 'string' },
  wait: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  backend: { type: 'string' },
  // daemons
  etcd: { type: 'string' },
  node: { type: 'string' },
  'node-dir': { type: 'string' },
  iface: { type: 'string' },
  'node-ip': { type: 'string' },
  'pod-runtime': { type: 'string' },
  'netns-prefix': { type: 'string' },
  'heartbeat-ttl': { type: 'string' },
  disable: { type: 'string' },
  'health-listen': { type: 'string' },
  identity: { type: 'string' },
  'lease-ttl': { type: 'string' },
  'node-monitor-grace-period': { type: 'string' },
  'pki-dir': { type: 'string' },
  kubeconfig: { type: 'string' },
  listen: { type: 'string' },
  datastore: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Values = ReturnType<typeof parse>['values'];
const parse = (args: string[]) => parseArgs({ args, allowPositionals: true, options: OPTIONS });

async function main(argv: string[]): Promise<number> {
  // The workload commands parse their own flags: they run inside pods, often many at once.
  if (argv[0] === 'serve') return runServeCommand(argv.slice(1));
  if (argv[0] === 'probe') return runProbeCommand(argv.slice(1));
  if (argv[0] === 'probe-worker') return runProbeWorker(argv.slice(1), process.stdin);
  if (argv[0] === 'install-cni') return (await import('../install/command.js')).runInstallCniCommand(argv.slice(1));

  const dash = argv.indexOf('--');
  const head = dash >= 0 ? argv.slice(0, dash) : argv;
  const tail = dash >= 0 ? argv.slice(dash + 1) : [];
  let parsed;
  try { parsed = parse(head); } catch (err) { throw new UsageError((err as Error).message); }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const [cmd, ...rest] = positionals;
  // exec reads the kubelets' records, not the store: it starts without loading the etcd client.
  if (cmd === 'exec') return (await import('./exec-command.js')).execCommand(rest, tail, values);
  // Loaded on demand: the etcd client costs ~250 ms to load, and serve/probe start in every pod.
  const { labCommand, manifestCommand, getCommand, checkCommand, demoCommand } = await import('./cluster-commands.js');
  switch (cmd) {
    case 'lab': return labCommand(rest, values);
    case 'apply': return manifestCommand('apply', values);
    case 'delete': return manifestCommand('delete', values);
    case 'get': return getCommand(rest, values);
    case 'check': return checkCommand(values);
    case 'policy': return (await import('./policy-command.js')).policyCommand(rest, values);
    case 'demo': return demoCommand(values);
    case 'agent': {
      if (!values.etcd || !values.node || !values['node-dir']) throw new UsageError('agent needs --etcd, --node and --node-dir');
      const runtime = values['pod-runtime'] ?? 'none';
      if (runtime !== 'lab' && runtime !== 'none') throw new UsageError(`--pod-runtime "${runtime}": expected lab or none`);
      const { parseDisabledFeatures } = await import('../agent/features/index.js');
      let features;
      try { features = parseDisabledFeatures(values.disable); } catch (err) { throw new UsageError(`--disable: ${(err as Error).message}`); }
      const agentOptions = {
        etcd: values.etcd, node: values.node, nodeDir: values['node-dir'], iface: values.iface, nodeIP: values['node-ip'],
        heartbeatTtlSeconds: values['heartbeat-ttl'] ? Number(values['heartbeat-ttl']) : undefined, features,
        healthListen: values['health-listen'],
      };
      if (agentOptions.healthListen && agentOptions.healthListen !== 'off') {
        const { parseListen } = await import('../agent/health.js');
        try { parseListen(agentOptions.healthListen); } catch (err) { throw new UsageError((err as Error).message); }
      }
      if (runtime === 'lab') {
        // The lab composes the agent and its kubelet (lab/node-daemon.ts); the agent knows nothing of the lab.
        const { runNodeDaemon } = await import('../lab/node-daemon.js');
        const { labSupervisor } = await import('../lab/supervisor.js');
        await runNodeDaemon({ ...agentOptions, netnsPrefix: values['netns-prefix'], supervisor: labSupervisor() });
      } else {
        const { runAgentCommand } = await import('../agent/main.js');
        await runAgentCommand(agentOptions);
      }
      return 0;
    }
    case 'apiserver': {
      if (!values.etcd || !values['pki-dir'] || !(values.kubeconfig || values.listen)) throw new UsageError('apiserver needs --etcd, --pki-dir and --kubeconfig or --listen');
      const listen = values.listen === undefined ? undefined : parseHostPort(values.listen, '--listen');
      const { runApiServerCommand } = await import('../apiserver/server.js');
      await runApiServerCommand({ etcd: values.etcd, pkiDir: values['pki-dir'], kubeconfig: values.kubeconfig, listen, clusterName: values.identity ?? 'flatnet' });
      return 0;
    }
    case 'controller': {
      if (!values.etcd) throw new UsageError('controller needs --etcd');
      const { runControllerCommand } = await import('../controller/main.js');
      const grace = values['node-monitor-grace-period'];
      let nodeMonitorGraceMs: number | undefined;
      if (grace !== undefined) {
        const { parseDuration } = await import('../lab/units.js');
        try { nodeMonitorGraceMs = parseDuration(grace, '--node-monitor-grace-period'); } catch (err) { throw new UsageError((err as Error).message); }
      }
      await runControllerCommand({ etcd: values.etcd, identity: values.identity, leaseTtlSeconds: values['lease-ttl'] ? Number(values['lease-ttl']) : undefined, nodeMonitorGraceMs });
      return 0;
    }
  }
  throw new UsageError(`unknown command "${cmd}"`);
}

/** "10.100.0.1:6443" → host and port; the error names the flag and the value. */
function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw new UsageError(`${flag} "${text}": expected IPv4:PORT, such as 10.100.0.1:6443`);
  return { host: m[1], port };
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    console.error(`flatnet: ${err instanceof Error ? err.message : String(err)}`);
    if (err instanceof UsageError) console.error(`\n${USAGE}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
