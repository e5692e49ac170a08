// The trace's own nft table on a node: it sets nftrace on exactly the tagged packet (its source port,
// or its ICMP echo id) before any other hook sees it, so tracing never marks other traffic. One table
// per trace (the tag in its name): traces running at once do not remove each other's.
import { Netns } from '../kernel/netns.js';
import { nftApply } from '../kernel/nft.js';

export type TraceProtocol = 'tcp' | 'udp' | 'icmp';

export const traceTableName = (tag: number): string => `flatnet-trace-${tag}`;

/** The match of the tagged packet: a TCP SYN (not its retransmits' answers), a datagram, an echo request. */
export function tagMatch(protocol: TraceProtocol, tag: number): string {
  if (protocol === 'tcp') return `tcp sport ${tag} tcp flags & (syn | ack) == syn`;
  if (protocol === 'udp') return `udp sport ${tag}`;
  return `icmp type echo-request icmp id ${tag}`;
}

/** The table that arms the trace: prerouting for packets a node forwards, output for its own. */
export function armScript(protocol: TraceProtocol, tag: number): string {
  const table = traceTableName(tag);
  const rule = `${tagMatch(protocol, tag)} meta nftrace set 1 comment "flatnet trace ${tag}"`;
  // Priority -400 runs before conntrack (-200) and the guard's raw chain (-300): every later table is traced.
  return [
    `table ip ${table} {`,
    `\tchain pre { type filter hook prerouting priority -400; policy accept; ${rule}; }`,
    `\tchain out { type filter hook output priority -400; policy accept; ${rule}; }`,
    '}', '',
  ].join('\n');
}

export async function arm(netnsPath: string, protocol: TraceProtocol, tag: number): Promise<void> {
  await nftApply(new Netns(netnsPath), armScript(protocol, tag));
}

/** Removes the trace table; one already gone is no error (add then delete: nft 1.0.6 has no "destroy"). */
export async function disarm(netnsPath: string, tag: number): Promise<void> {
  const ns = new Netns(netnsPath);
  if (!ns.exists()) return;
  const table = `ip ${traceTableName(tag)}`;
  await nftApply(ns, `add table ${table}\ndelete table ${table}\n`);
}
