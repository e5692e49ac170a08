// What the route renderer needs of each Node: its IP and its pod CIDRs. `ready` (the Node's Ready
// condition) is informational: a peer is routed while its Node exists, whatever its heartbeat.
import { podCIDRsOf, type Node } from '../api/types.js';

export interface NodeView { name: string; nodeIP: string; nodeIPv6?: string; podCIDRs: string[]; ready: boolean }

/** Nodes with an InternalIP, by name. Pure. */
export function nodeViews(nodes: Node[]): NodeView[] {
  const out: NodeView[] = [];
  for (const n of nodes) {
    const internal = (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address);
    const ip = internal.find((a) => !a.includes(':'));
    if (!ip) continue;
    const nodeIPv6 = internal.find((a) => a.includes(':'));
    const ready = n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    out.push({ name: n.metadata.name, nodeIP: ip, ...(nodeIPv6 ? { nodeIPv6 } : {}), podCIDRs: podCIDRsOf(n), ready });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
