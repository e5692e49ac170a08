// Masquerade for pods leaving the cluster: traffic from this node's pods to anywhere outside the cluster
// CIDRs leaves with the node's IP (the internet cannot route pod IPs back), while pod→pod and node→pod
// traffic is never touched (rule 1). One table of our own, replaced in one nft transaction when it differs.
import ipaddr from 'ipaddr.js';
import { nftApply, nftListTable } from '../../kernel/nft.js';
import type { Netns } from '../../kernel/netns.js';

export const MASQ_TABLE = 'flatnet-masq';

export interface MasqInputs { podCIDRs: string[]; clusterCIDRs: string[] }

const isV6 = (cidr: string) => cidr.includes(':');

/** Sorted by address, as nft prints a set, so the listing reads back exactly as rendered. */
function sortCIDRs(cidrs: string[]): string[] {
  const key = (c: string) => ipaddr.parse(c.split('/')[0]).toByteArray().map((b) => b.toString(16).padStart(2, '0')).join('');
  return [...new Set(cidrs)].sort((a, b) => key(a).localeCompare(key(b)));
}

function setExpr(cidrs: string[]): string {
  const s = sortCIDRs(cidrs);
  return s.length === 1 ? s[0] : `{ ${s.join(', ')} }`;
}

/** The nft text of the masquerade tables, in the canonical form `nft list table` prints. Pure. */
export function renderMasq(inp: MasqInputs): string {
  const out: string[] = [];
  for (const [family, sel] of [['ip', 'ip'], ['ip6', 'ip6']] as const) {
    const pods = inp.podCIDRs.filter((c) => isV6(c) === (family === 'ip6'));
    const cluster = inp.clusterCIDRs.filter((c) => isV6(c) === (family === 'ip6'));
    if (pods.length === 0) continue;
    out.push(`table ${family} ${MASQ_TABLE} {`,
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      ...pods.map((p) => `\t\t${sel} saddr ${p} ${cluster.length ? `${sel} daddr != ${setExpr(cluster)} ` : ''}masquerade`),
      '\t}',
      '}');
  }
  return out.join('\n') + (out.length ? '\n' : '');
}

const tablesOf = (text: string): string[] => [...text.matchAll(/^table (ip6?) (\S+) \{/gm)].map((m) => `${m[1]} ${m[2]}`);
const normalize = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean).join('\n');

async function listTable(ns: Netns, table: string): Promise<string | undefined> {
  const [family, name] = table.split(' ');
  return nftListTable(ns, family, name).catch(() => undefined);
}

/** Makes the kernel hold exactly `text`'s tables (and no stale family of ours); no write when it already does. */
export async function applyMasq(ns: Netns, text: string): Promise<{ changed: boolean }> {
  const want = new Map<string, string>();
  for (const block of text.split(/(?=^table )/m).filter((b) => b.trim())) want.set(tablesOf(block)[0], block);
  const script: string[] = [];
  for (const table of [`ip ${MASQ_TABLE}`, `ip6 ${MASQ_TABLE}`]) {
    const have = await listTable(ns, table);
    const block = want.get(table);
    if (block && have !== undefined && normalize(have) === normalize(block)) continue;
    if (!block && have === undefined) continue;
    // "add" first makes the delete valid whether or not the table exists; all of it is one transaction.
    script.push(`add table ${table}`, `delete table ${table}`);
    if (block) script.push(block);
  }
  if (script.length === 0) return { changed: false };
  await nftApply(ns, script.join('\n') + '\n');
  return { changed: true };
}
