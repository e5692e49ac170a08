// Node IPAM, the decision half: which pod CIDR each node gets. Pure, so every rule (lowest free slice,
// existing CIDRs kept, disjoint, exhaustion) is tested without a store. Like kube-controller-manager's
// range allocator, a slice is in use while any Node object holds it: a deleted node's CIDR becomes free
// only when its Node object is gone, so a restarting agent never finds its CIDR handed to another node.
import { bitsOf, formatCidr, parseCidr, subnetBounds, type Family } from '../ipam/addr.js';
import type { ClusterConfig } from '../api/types.js';

export interface NodeCIDRs {
  name: string;
  /** What the Node holds now (spec.podCIDRs, or [spec.podCIDR]); empty when it has none. */
  podCIDRs: string[];
}

/** Node name → its pod CIDRs (kept or newly given), plus the nodes that could not get one and why. */
export class CIDRAllocation extends Map<string, string[]> {
  readonly failures: Array<{ node: string; message: string }> = [];
}

interface Range { start: bigint; last: bigint }


/**
 * Gives every node without a CIDR the lowest free /nodeCIDRMaskSize slice of each cluster CIDR (nodes in
 * name order), keeps every existing CIDR, and never hands out a slice that overlaps one a node holds.
 * A node gets all its families or none: half a dual-stack allocation would be a CIDR it can never
 * complete (set CIDRs are never changed). Throws only for a config that cannot work at all.
 */
export function allocateNodeCIDRs(config: ClusterConfig, nodes: NodeCIDRs[]): CIDRAllocation {
  const pools = config.clusterCIDRs.map((text) => poolOf(text, config));
  const used = new Map<Family, Range[]>([[4, []], [6, []]]);
  const out = new CIDRAllocation();
  for (const n of nodes) {
    if (n.podCIDRs.length === 0) continue;
    out.set(n.name, [...n.podCIDRs]);
    for (const text of n.podCIDRs) {
      const c = parseCidr(text);
      if (!c) continue;
      const { network, last } = subnetBounds(c);
      used.get(c.ip.version)!.push({ start: network, last });
    }
  }
  const waiting = nodes.filter((n) => n.podCIDRs.length === 0).map((n) => n.name).sort();
  for (const name of waiting) {
    const picked: Array<{ family: Family; range: Range; text: string }> = [];
    let failure: string | undefined;
    for (const pool of pools) {
      const range = lowestFree(pool, used.get(pool.family)!);
      if (!range) { failure = `cluster CIDR ${pool.text} has no free /${pool.mask} for node "${name}"`; break; }
      picked.push({ family: pool.family, range, text: formatCidr({ ip: { version: pool.family, value: range.start }, prefix: pool.mask }) });
    }
    if (failure) { out.failures.push({ node: name, message: failure }); continue; }
    for (const p of picked) used.get(p.family)!.push(p.range);
    out.set(name, picked.map((p) => p.text));
  }
  return out;
}

interface Pool { text: string; family: Family; network: bigint; last: bigint; mask: number }

function poolOf(text: string, config: ClusterConfig): Pool {
  const c = parseCidr(text);
  if (!c) throw new Error(`cluster CIDR "${text}" is not a CIDR`);
  const family = c.ip.version;
  const mask = family === 4 ? config.nodeCIDRMaskSize.ipv4 : config.nodeCIDRMaskSize.ipv6 ?? 64;
  if (!Number.isInteger(mask) || mask < c.prefix || mask > bitsOf(family)) {
    throw new Error(`node CIDR mask size /${mask} does not fit cluster CIDR ${text} (needs /${c.prefix}../${bitsOf(family)})`);
  }
  const { network, last } = subnetBounds(c);
  return { text, family, network, last, mask };
}

/** The lowest mask-aligned slice of the pool that overlaps no used range; undefined when there is none. */
function lowestFree(pool: Pool, used: Range[]): Range | undefined {
  const size = 1n << BigInt(bitsOf(pool.family) - pool.mask);
  const alignUp = (v: bigint) => pool.network + (((v - pool.network) + size - 1n) / size) * size;
  let candidate = pool.network;
  // Walk used ranges by start: each one overlapping the candidate pushes it past that range's end.
  for (const r of [...used].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    if (r.last < candidate) continue;
    if (r.start > candidate + size - 1n) break;
    candidate = alignUp(r.last + 1n);
  }
  return candidate + size - 1n <= pool.last ? { start: candidate, last: candidate + size - 1n } : undefined;
}
