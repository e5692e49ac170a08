// `flatnet exec [NS/]POD [-c C] -- CMD`: runs CMD inside a running container, as `kubectl exec` does
// through the kubelet: in the container's namespaces, as its user, with its capabilities. It reads the
// node kubelets' pod records and never the store: it starts at once (no etcd client to load), and it
// reaches only what a kubelet has running.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { UsageError } from './usage.js';
import type { Values } from './main.js';
import { DEFAULT_LAB_ROOT } from '../lab/paths.js';
import { podRecords, type PodRecord } from '../lab/kubelet.js';
import { livePid } from '../lab/processes.js';
import { execArgv } from '../lab/containment.js';

/** The record of the pod `ns/name` on any node of the lab at `labDir`. */
function findPod(labDir: string, ns: string, name: string): { node: string; rec: PodRecord } | undefined {
  const nodesDir = join(labDir, 'nodes');
  for (const node of existsSync(nodesDir) ? readdirSync(nodesDir) : []) {
    const rec = podRecords(join(nodesDir, node)).find((r) => r.namespace === ns && r.name === name);
    if (rec) return { node, rec };
  }
  return undefined;
}

export async function execCommand(rest: string[], tail: string[], v: Values): Promise<number> {
  if (!rest[0]) throw new UsageError('exec needs a pod: [NS/]POD');
  if (tail.length === 0) throw new UsageError('exec needs a command after "--"');
  const [ns, name] = rest[0].includes('/') ? rest[0].split('/', 2) : [v.namespace ?? 'default', rest[0]];
  const labName = v.lab ?? process.env.FLATNET_LAB ?? 'flatnet';
  const labDir = join(v['state-dir'] ?? DEFAULT_LAB_ROOT, labName);
  if (!existsSync(join(labDir, 'cluster.json'))) throw new Error(`lab "${labName}" is not up (no ${join(labDir, 'cluster.json')}); run "flatnet lab up"`);
  const found = findPod(labDir, ns, name);
  if (!found) {
    console.error(`Error from server (NotFound): pods "${name}" not found in namespace ${ns} (or not running on any node yet)`);
    return 1;
  }
  const { node, rec } = found;
  const entry = v.container ? rec.containers.find((c) => c.name === v.container) : rec.containers[0];
  if (!entry) {
    throw new Error(`container ${v.container} is not valid for pod ${name}: containers are ${rec.containers.map((c) => c.name).join(', ')}`);
  }
  const pid = livePid(entry.pidFile);
  if (pid === undefined) throw new Error(`container ${entry.name} of pod ${ns}/${name} is not running`);
  if (!entry.identity) throw new Error(`container ${entry.name} of pod ${ns}/${name} was started uncontained by an older flatnet; delete the pod to have it recreated`);
  const [cmd, ...args] = execArgv(pid, entry.identity, tail);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: 'inherit',
      // The container's environment, not the caller's: as kubectl exec, whose command runs where the container does.
      env: {
        PATH: `${join(labDir, 'nodes', node, 'bin')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
        POD_NAME: name, POD_NAMESPACE: ns, HOSTNAME: name, ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
      },
    });
    child.on('error', reject);
    // A command ended by a signal exits 128 + its number, as a shell reports it.
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
  });
}
