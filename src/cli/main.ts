// flatnet: the command line. Argument parsing and output only; the work happens in the subsystems.
import { parse } from './options.js';
import { UsageError, USAGE } from './usage.js';
import { runServeCommand, runProbeCommand } from '../workload/index.js';
import { runProbeWorker } from '../workload/probe-worker.js';

export { OPTIONS, type Values } from './options.js';

async function main(argv: string[]): Promise<number> {
  // The workload commands parse their own flags: they run inside pods, often many at once.
  if (argv[0] === 'serve') return runServeCommand(argv.slice(1));
  if (argv[0] === 'probe') return runProbeCommand(argv.slice(1));
  if (argv[0] === 'probe-worker') return runProbeWorker(argv.slice(1), process.stdin);
  // logs parses its own flags (-f is --follow there); it reads the nodes' drop logs, no store.
  const logsAt = argv.findIndex((a, i) => a === 'logs' && argv.slice(0, i).every((x, j) => j % 2 === 1 || x === '--lab' || x === '--state-dir'));
  if (logsAt >= 0) return (await import('./logs-command.js')).logsCommand([...argv.slice(0, logsAt), ...argv.slice(logsAt + 1)]);
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
    case 'ui': return (await import('./ui-command.js')).uiCommand(values);
    case 'trace': return (await import('./trace-command.js')).traceCommand(rest, values);
    case 'agent': {
      const { agentCommandOptions } = await import('./agent-args.js');
      const { runtime, options: agentOptions } = await agentCommandOptions(values, process.env);
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
      const datastore = values.datastore ?? 'etcd';
      if (datastore !== 'etcd' && datastore !== 'kubernetes') throw new UsageError(`--datastore "${datastore}": expected etcd or kubernetes`);
      if (datastore === 'etcd' && !values.etcd) throw new UsageError('controller needs --etcd');
      if (datastore === 'kubernetes' && !values.config) throw new UsageError('controller --datastore kubernetes needs --config FILE (the network config)');
      const { runControllerCommand } = await import('../controller/main.js');
      const grace = values['node-monitor-grace-period'];
      let nodeMonitorGraceMs: number | undefined;
      if (grace !== undefined) {
        const { parseDuration } = await import('../lab/units.js');
        try { nodeMonitorGraceMs = parseDuration(grace, '--node-monitor-grace-period'); } catch (err) { throw new UsageError((err as Error).message); }
      }
      const metricsListen = values['metrics-listen'];
      if (metricsListen && metricsListen !== 'off') {
        const { parseListen } = await import('../agent/health.js');
        try { parseListen(metricsListen); } catch (err) { throw new UsageError((err as Error).message.replace('--health-listen', '--metrics-listen')); }
      }
      await runControllerCommand({ datastore, etcd: values.etcd, kubeconfig: values.kubeconfig, config: values.config, identity: values.identity, leaseTtlSeconds: values['lease-ttl'] ? Number(values['lease-ttl']) : undefined, nodeMonitorGraceMs, metricsListen });
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
