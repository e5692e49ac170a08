// Sysctls of one network namespace, written only when they differ. The agent runs inside its node's
// namespace, where /proc/sys/net is that namespace's own; another namespace is reached with sysctl(8).
import { readFileSync, writeFileSync } from 'node:fs';
import { runCommand } from './exec.js';
import type { Netns } from './netns.js';

export async function ensureSysctls(ns: Netns, values: Record<string, string>): Promise<void> {
  if (ns.path === null) {
    for (const [k, v] of Object.entries(values)) {
      const file = `/proc/sys/${k.replace(/\./g, '/')}`;
      if (readFileSync(file, 'utf8').trim() !== v) writeFileSync(file, `${v}\n`);
    }
    return;
  }
  const { cmd, args } = ns.wrap('sysctl', ['-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
  const r = await runCommand(cmd, args);
  if (r.code !== 0) throw new Error(`sysctl in ${ns}: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/**
 * Pods on one bridge talk without a routing hop, so netfilter's forward hook (policy) sees them only
 * when the bridge passes IP traffic up (br_netfilter: built into this kernel, per namespace since 5.3,
 * on by default; kubeadm asks the same of every node).
 */
export const ensureBridgeFiltering = (ns: Netns): Promise<void> =>
  ensureSysctls(ns, { 'net.bridge.bridge-nf-call-iptables': '1', 'net.bridge.bridge-nf-call-ip6tables': '1' });
