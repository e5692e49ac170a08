// What one node's tables should do with a connection, by the evaluator, and whether the packet tracer's
// answer over that node's live ruleset agrees (`flatnet policy explain --node`). Pure: the caller reads
// the table and runs the tracer (src/dataplane/nft/tracer.ts); this module only builds its packet and
// judges the two answers against each other.
import type { Verdict } from './evaluate.js';
import { indexWorld, nodeAt, podAt, type Connection, type PolicyWorld } from './world.js';
import { normalizeAddress } from './addresses.js';

/** The packet the tracer takes (its TracePacket, the fields set here). */
export interface TracedPacket {
  family: 4 | 6;
  hook: 'forward' | 'input' | 'output';
  saddr: string;
  daddr: string;
  protocol: 'tcp' | 'udp' | 'sctp' | 'icmp';
  sport?: number;
  dport?: number;
  ctState: 'new';
  local: string[];
}

/** The tracer's answer (its TraceResult, the fields read here). */
export interface TraceLike {
  verdict: 'accept' | 'drop';
  path: Array<{ table: string; chain: string; rule: string; comment?: string; did: string }>;
}

export interface NodeExpectation {
  node: string;
  packet: TracedPacket;
  /** The directions this node's table judges: egress for its own source pod, ingress for its own destination. */
  judged: Array<'egress' | 'ingress'>;
  /** What the node's tables should do with the first packet. */
  allowed: boolean;
  /** Said when the node's table has nothing to judge (neither end is its pod, or the node sends it). */
  note?: string;
  /** False for a pod reaching its own address: no node's table sees that packet, so a trace proves nothing. */
  comparable: boolean;
}

/**
 * What node `node` should do with `conn` (already after DNAT): its table judges egress only for a
 * source pod on it and ingress only for a destination pod on it; traffic the node sends itself goes
 * through output, which policy does not filter.
 */
export function expectationOnNode(world: PolicyWorld, conn: Connection, v: Verdict, node: string): NodeExpectation {
  const idx = indexWorld(world);
  const self = world.nodes.find((n) => n.metadata.name === node);
  const local = self?.status?.addresses?.filter((a) => a.type === 'InternalIP').map((a) => normalizeAddress(a.address) ?? a.address) ?? [];
  const fromNode = nodeAt(idx, conn.from)?.metadata.name === node;
  const toNode = nodeAt(idx, conn.to)?.metadata.name === node;
  const hook = fromNode ? 'output' : toNode ? 'input' : 'forward';
  const packet: TracedPacket = {
    family: conn.to.includes(':') ? 6 : 4, hook, saddr: conn.from, daddr: conn.to,
    protocol: conn.protocol.toLowerCase() as TracedPacket['protocol'], ctState: 'new', local,
    ...(conn.protocol === 'ICMP' ? {} : { sport: 40000, dport: conn.port }),
  };
  const src = podAt(idx, conn.from);
  if (src && src === podAt(idx, conn.to)) {
    return { node, packet, judged: [], allowed: true, comparable: false,
      note: 'a pod reaching its own address stays inside its network namespace: no node table sees it' };
  }
  const judged: NodeExpectation['judged'] = [];
  if (src?.spec.nodeName === node && !v.egress.always) judged.push('egress');
  if (podAt(idx, conn.to)?.spec.nodeName === node && !v.ingress.always) judged.push('ingress');
  const allowed = hook === 'output' || judged.every((d) => (d === 'egress' ? v.egress : v.ingress).allowed);
  const note = hook === 'output' ? `node ${node} sends it: output is not filtered by policy`
    : judged.length === 0 ? `neither end is a pod judged on node ${node}: its policy table passes it` : undefined;
  return { node, packet, judged, allowed, comparable: true, ...(note ? { note } : {}) };
}

/** Lines comparing the tracer's verdict with the expectation; the first says whether they agree. */
export function compareTrace(e: NodeExpectation, t: TraceLike): { agree: boolean; lines: string[] } {
  if (!e.comparable) return { agree: true, lines: [`node ${e.node}: not compared (${e.note})`] };
  const want = e.allowed ? 'accept' : 'drop';
  const agree = t.verdict === want;
  const last = [...t.path].reverse().find((s) => s.rule !== '' || s.did.startsWith('policy'));
  const where = last ? ` at ${last.table} ${last.chain}${last.comment ? ` ("${last.comment}")` : last.rule ? ` (${last.rule})` : ''}` : '';
  const judged = e.judged.length ? e.judged.join(' and ') : 'nothing';
  return {
    agree,
    lines: [
      agree ? `node ${e.node}: tracer ${t.verdict}s${where}, as the evaluator says (${judged} judged there)`
        : `node ${e.node}: DISAGREE: the evaluator says ${want} (${judged} judged there), the tracer says ${t.verdict}${where}`,
      ...(e.note ? [`  ${e.note}`] : []),
    ],
  };
}
