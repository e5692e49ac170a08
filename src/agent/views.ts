// What the route renderer needs of each Node: its IP, its pod CIDRs, and whether its agent is alive.
import { podCIDRsOf, type Node } from '../api/types.js';

export interface NodeView { name: string; nodeIP: string; podCIDRs: string[]; ready: boolean }

/** Nodes with an InternalIP; `ready` when the node's heartbeat key exists. Pure. */
export function nodeViews(nodes: Node[], alive: Set<string>): NodeView[] {
  const out: NodeView[] = [];
  for (const n of nodes) {
    const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (!ip) continue;
    out.push({ name: n.metadata.name, nodeIP: ip, podCIDRs: podCIDRsOf(n), ready: alive.has(n.metadata.name) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
