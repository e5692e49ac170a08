// `ipMasq: true` (the reference bridge plugin's key): pod traffic that leaves through any interface
// other than its own bridge is masqueraded. One table, two sets; ADD and DEL only change elements.
import type { Allocation } from '../ipam/types.js';

const TABLE = 'flatnet-cni';

function skeleton(family: 'ip' | 'ip6'): string[] {
  const addr = family === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const multicast = family === 'ip' ? '224.0.0.0/4' : 'ff00::/8';
  return [
    `add table ${family} ${TABLE}`,
    `add set ${family} ${TABLE} masq_pods { type ${addr}; }`,
    `add set ${family} ${TABLE} pod_bridge { type ${addr} . ifname; }`,
    `add chain ${family} ${TABLE} postrouting { type nat hook postrouting priority srcnat; }`,
    // Re-stating the one rule in the same transaction keeps ADD idempotent.
    `flush chain ${family} ${TABLE} postrouting`,
    `add rule ${family} ${TABLE} postrouting ${family} saddr @masq_pods ${family} daddr != ${multicast} ${family} saddr . oifname != @pod_bridge masquerade`,
  ];
}

const familyOf = (al: Allocation): 'ip' | 'ip6' => (al.version === 4 ? 'ip' : 'ip6');

/** The transaction that makes `allocs` masqueraded when leaving `bridge`. */
export function renderMasqAdd(bridge: string, allocs: Allocation[]): string {
  const lines: string[] = [];
  for (const fam of new Set(allocs.map(familyOf))) lines.push(...skeleton(fam));
  for (const al of allocs) {
    const fam = familyOf(al);
    lines.push(`add element ${fam} ${TABLE} masq_pods { ${al.ip} }`);
    lines.push(`add element ${fam} ${TABLE} pod_bridge { ${al.ip} . "${bridge}" }`);
  }
  return lines.join('\n') + '\n';
}

/** Removes the elements of `ips`; "add then delete" makes removal succeed when they are already gone. */
export function renderMasqDel(bridge: string, ips: string[]): string {
  const lines: string[] = [];
  const fams = new Set(ips.map((ip) => (ip.includes(':') ? 'ip6' : 'ip')));
  for (const fam of fams) {
    const addr = fam === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
    lines.push(`add table ${fam} ${TABLE}`);
    lines.push(`add set ${fam} ${TABLE} masq_pods { type ${addr}; }`);
    lines.push(`add set ${fam} ${TABLE} pod_bridge { type ${addr} . ifname; }`);
  }
  for (const ip of ips) {
    const fam = ip.includes(':') ? 'ip6' : 'ip';
    for (const [set, el] of [['masq_pods', ip], ['pod_bridge', `${ip} . "${bridge}"`]] as const) {
      lines.push(`add element ${fam} ${TABLE} ${set} { ${el} }`);
      lines.push(`delete element ${fam} ${TABLE} ${set} { ${el} }`);
    }
  }
  return lines.join('\n') + '\n';
}
