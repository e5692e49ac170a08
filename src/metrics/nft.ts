// The gauge of nft set and map elements per table, read when scraped: the set names from a terse
// listing (no elements, fast), the counts from the netlink dump helper (nft-dump.c), never from
// `nft list` text, which formats every element (~1 s at 60,000).
import { Gauge } from 'prom-client';
import { runCommand } from '../kernel/exec.js';
import { countSetElements } from '../kernel/nft-elements.js';
import type { Netns } from '../kernel/netns.js';
import { registry } from './registry.js';

export interface NftSetRef { family: string; table: string; set: string }

/** The sets and maps of flatnet's tables in `nft -j -t list ruleset` output (a host's other tables are not ours to count). Pure. */
export function setsOfListing(json: string): NftSetRef[] {
  const doc = JSON.parse(json) as { nftables?: Record<string, { family?: string; table?: string; name?: string }>[] };
  const out: NftSetRef[] = [];
  for (const item of doc.nftables ?? []) {
    const s = item.set ?? item.map;
    if (s?.family && s.table?.startsWith('flatnet') && s.name) out.push({ family: s.family, table: s.table, set: s.name });
  }
  return out;
}

/** Every set's element count in `ns`, by family, table and set; empty when nft or the helper cannot run. */
export async function readNftElementCounts(ns: Netns): Promise<(NftSetRef & { elements: number })[]> {
  const w = ns.wrap('nft', ['-j', '-t', 'list', 'ruleset']);
  const r = await runCommand(w.cmd, w.args);
  if (r.code !== 0) return [];
  const byTable = new Map<string, NftSetRef[]>();
  for (const s of setsOfListing(r.stdout)) {
    const k = `${s.family} ${s.table}`;
    byTable.set(k, [...(byTable.get(k) ?? []), s]);
  }
  const out: (NftSetRef & { elements: number })[] = [];
  for (const sets of byTable.values()) {
    const { family, table } = sets[0];
    const counts = await countSetElements(ns, family, table, sets.map((s) => s.set));
    for (const [set, elements] of counts ?? []) out.push({ family, table, set, elements });
  }
  return out;
}

/** Registers the gauge for the agent's netns (once per process: the agent is one per process). */
export function registerNftElements(ns: Netns): void {
  if (registry.getSingleMetric('flatnet_nft_set_elements')) return;
  new Gauge({
    name: 'flatnet_nft_set_elements', help: 'Elements in each set and map of flatnet\'s nftables tables in the agent\'s network namespace, read when scraped.',
    labelNames: ['family', 'table', 'set'] as const, registers: [registry],
    async collect() {
      this.reset();
      for (const c of await readNftElementCounts(ns)) this.set({ family: c.family, table: c.table, set: c.set }, c.elements);
    },
  });
}
