// `nft monitor trace` lines, typed: the packet as each base chain first sees it, every rule that matched
// with its verdict and comment, and the chain policies that decided. Pure: the monitor process is
// src/trace/monitor.ts.

/** The packet fields a hop reports, from a "packet:" line. */
export interface TracedPacketFields {
  iif?: string;
  oif?: string;
  saddr?: string;
  daddr?: string;
  protocol?: string;
  sport?: number;
  dport?: number;
}

export interface TraceEvent {
  /** The kernel's trace id: one per packet per netns. */
  id: string;
  family: string;
  table: string;
  chain: string;
  kind: 'packet' | 'rule' | 'policy';
  /** Rule text without its verdict, for kind "rule". */
  rule?: string;
  comment?: string;
  /** accept, drop, continue, "jump X", "goto X", return. */
  verdict?: string;
  packet?: TracedPacketFields;
}

const LINE = /^trace id (\S+) (ip6?|inet|arp|bridge|netdev) (\S+) (\S+) (packet|rule|policy)(?::)? ?(.*)$/;

/** One line of `nft monitor` output; undefined for anything that is not a trace line. */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = LINE.exec(line.trim());
  if (!m) return undefined;
  const [, id, family, table, chain, kind, rest] = m;
  const ev: TraceEvent = { id, family, table, chain, kind: kind as TraceEvent['kind'] };
  if (kind === 'packet') ev.packet = packetFields(rest);
  if (kind === 'policy') ev.verdict = rest.trim();
  if (kind === 'rule') {
    const v = /\s*\(verdict ([^)]+)\)\s*$/.exec(rest);
    ev.rule = (v ? rest.slice(0, v.index) : rest).trim();
    if (v) ev.verdict = v[1];
    const c = /comment "([^"]*)"/.exec(ev.rule);
    if (c) ev.comment = c[1];
  }
  return ev;
}

function packetFields(text: string): TracedPacketFields {
  const word = (re: RegExp) => re.exec(text)?.[1];
  const f: TracedPacketFields = {};
  const iif = word(/\biif "([^"]+)"/);
  const oif = word(/\boif "([^"]+)"/);
  const saddr = word(/\bip6? saddr (\S+)/);
  const daddr = word(/\bip6? daddr (\S+)/);
  if (iif) f.iif = iif;
  if (oif) f.oif = oif;
  if (saddr) f.saddr = saddr;
  if (daddr) f.daddr = daddr;
  const l4 = /\b(tcp|udp|sctp) sport (\d+) \1 dport (\d+)/.exec(text);
  if (l4) { f.protocol = l4[1]; f.sport = Number(l4[2]); f.dport = Number(l4[3]); }
  else if (/\bicmp type /.test(text)) f.protocol = 'icmp';
  return f;
}

/**
 * The events of the first packet our trace table marked, in order: the trace id of the first event
 * in `ownTable`, and every event with that id outside `ownTable`.
 */
export function firstTaggedPacket(events: TraceEvent[], ownTable: string): TraceEvent[] {
  const first = events.find((e) => e.table === ownTable);
  if (!first) return [];
  return events.filter((e) => e.id === first.id && e.table !== ownTable);
}
