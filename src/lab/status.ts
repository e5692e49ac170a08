// `flatnet lab status`: what of a lab is up, read from its pid files, namespaces and store.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HEARTBEAT_PREFIX, NODE_PREFIX, POD_PREFIX, heartbeatNode } from '../api/keys.js';
import type { Node } from '../api/types.js';
import type { ClusterLab } from './cluster.js';
import { livePid } from './processes.js';

export async function labStatus(lab: ClusterLab): Promise<string> {
  if (!lab.exists()) return `lab ${lab.name}: not up`;
  const cluster = lab.cluster();
  const plan = lab.plan(cluster);
  const lines = [`lab ${lab.name}: backend ${cluster.backend}, cluster CIDR ${cluster.clusterCIDR}, state ${lab.dir}`, '', 'PROCESS'.padEnd(19) + 'PID'.padEnd(9) + 'STATE'];
  const runDir = join(lab.dir, 'run');
  for (const f of existsSync(runDir) ? readdirSync(runDir).filter((x) => x.endsWith('.pid')).sort() : []) {
    const pid = livePid(join(runDir, f));
    lines.push(`${f.replace(/\.pid$/, '').padEnd(19)}${String(pid ?? '-').padEnd(9)}${pid ? 'running' : 'stopped'}`);
  }
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
