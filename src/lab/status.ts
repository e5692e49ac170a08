// `flatnet lab status`: what of a lab is up, read from its pid files, namespaces and store.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HEARTBEAT_PREFIX, NODE_PREFIX, POD_PREFIX, heartbeatNode } from '../api/keys.js';
import type { Node } from '../api/types.js';
import type { ClusterLab } from './cluster.js';
import type { LabCluster } from './cluster-file.js';
import { controlPlaneEndpoint } from './control-plane.js';
import { livePid } from './processes.js';
import { labMetricsLine } from '../metrics/where.js';
import { heldUntil, readSupervisorState } from './units.js';

export async function labStatus(lab: ClusterLab): Promise<string> {
  if (!lab.exists()) return `lab ${lab.name}: not up`;
  const cluster = lab.cluster();
  const plan = lab.plan(cluster);
  const lines = [`lab ${lab.name}: backend ${cluster.backend}, cluster CIDR ${cluster.clusterCIDR}, state ${lab.dir}`, apiLine(lab), agentsLine(lab, cluster), labMetricsLine(lab.controllerMetricsFile), '', ...processLines(lab)];
  const present = new Set(existsSync('/run/netns') ? readdirSync('/run/netns') : []);
  lines.push('', 'NAMESPACE'.padEnd(32) + 'STATE');
  for (const ns of plan.namespaces) lines.push(`${ns.padEnd(32)}${present.has(ns) ? 'present' : 'MISSING'}`);
  lines.push(`${lab.podNetnses().length} pod namespaces`);
  try {
    const store = lab.store();
    try {
      const nodes = (await store.list(NODE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Node);
      const beats = new Set((await store.list(HEARTBEAT_PREFIX)).items.map((kv) => heartbeatNode(kv.key)));
      const pods = (await store.list(POD_PREFIX)).items.length;
      lines.push('', 'NODE'.padEnd(12) + 'INTERNAL-IP'.padEnd(16) + 'POD-CIDR'.padEnd(18) + 'HEARTBEAT');
      for (const n of nodes) {
        const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '<none>';
        lines.push(n.metadata.name.padEnd(12) + ip.padEnd(16) + (n.spec.podCIDR ?? '<none>').padEnd(18) + (beats.has(n.metadata.name) ? 'alive' : 'lost'));
      }
      lines.push(`${pods} pods`);
    } finally { await store.close(); }
  } catch (err) {
    lines.push('', `store unreachable: ${(err as Error).message}`);
  }
  return lines.join('\n');
}

/** Where kubectl finds the lab's API: the kubeconfig and the server it names. */
function apiLine(lab: ClusterLab): string {
  let text: string;
  try { text = readFileSync(lab.kubeconfigPath, 'utf8'); } catch { return 'kubernetes API: no kubeconfig (the API server has not started)'; }
  const server = /^\s*server: (\S+)$/m.exec(text)?.[1] ?? '?';
  return `kubernetes API: ${server}, kubeconfig ${lab.kubeconfigPath}`;
}

/** What the agents read: etcd, or the API on the control-plane endpoint with their ServiceAccount's kubeconfig. */
function agentsLine(lab: ClusterLab, cluster: LabCluster): string {
  if (cluster.datastore !== 'kubernetes') return `agents read: etcd ${lab.etcdEndpoint}`;
  const at = controlPlaneEndpoint(cluster);
  return `agents read: the Kubernetes API at https://${at.host}:${at.port} (the router's namespace), kubeconfig ${lab.agentKubeconfigPath}`;
}

/** One line per daemon: its pid, whether it runs (or waits: backoff, held), restarts and how it last ended. */
function processLines(lab: ClusterLab): string[] {
  const lines = ['PROCESS'.padEnd(19) + 'PID'.padEnd(9) + 'STATE'.padEnd(10) + 'RESTARTS'.padEnd(10) + 'LAST EXIT'];
  const runDir = join(lab.dir, 'run');
  const units = readSupervisorState(lab.dir)?.units ?? {};
  const now = Date.now();
  for (const f of existsSync(runDir) ? readdirSync(runDir).filter((x) => x.endsWith('.pid')).sort() : []) {
    const name = f.replace(/\.pid$/, '');
    const pid = livePid(join(runDir, f));
    const u = units[name];
    const held = heldUntil(lab.dir, name, now);
    const state = pid ? 'running' : held ? 'held' : u?.nextStartAt && Date.parse(u.nextStartAt) > now ? 'backoff' : 'stopped';
    const last = u?.lastExit ? `${u.lastExit} at ${u.lastExitAt}` : '-';
    const extra = held ? ` (held until ${new Date(held).toISOString()})` : '';
    lines.push(`${name.padEnd(19)}${String(pid ?? '-').padEnd(9)}${state.padEnd(10)}${String(u?.restarts ?? '-').padEnd(10)}${last}${extra}`);
  }
  return lines;
}
