// What the route renderer needs of each Node: its IP, its pod CIDRs, and whether its agent is alive.
import { podCIDRsOf, type Node } from '../api/types.js';

export interface NodeView { name: string; nodeIP: string; nodeIPv6?: string; podCIDRs: string[]; ready: boolean }

/** Nodes with an InternalIP; `ready` when the node's heartbeat key exists. Pure. */
export function nodeViews(nodes: Node[], alive: Set<string>): NodeView[] {
  const out: NodeView[] = [];
  for (const n of nodes) {
    const internal = (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
    const ip = internal.find((a) => !a.includes(':'));
    if (!ip) continue;
    const nodeIPv6 = internal.find((a) => a.includes(':'));
    out.push({ name: n.metadata.name, nodeIP: ip, ...(nodeIPv6 ? { nodeIPv6 } : {}), podCIDRs: podCIDRsOf(n), ready: alive.has(n.metadata.name) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
