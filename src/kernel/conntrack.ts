// Connection tracking entries through conntrack-tools (1.4.7): list them typed, delete one by its
// original tuple, and the proxy's "forget UDP flows that went to an endpoint that left" (UDP has no
// connection to reset, so its entries would keep sending a client's datagrams to the old endpoint).
import { runCommand } from './exec.js';
import type { Netns } from './netns.js';

export class ConntrackError extends Error {}

/** One direction of a flow: addresses, and ports (TCP, UDP, SCTP) or ICMP type/code/id. */
export interface ConntrackTuple {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** ICMP only: type, code and id. */
  icmp?: { type: number; code: number; id: number };
}

export interface ConntrackEntry {
  /** "tcp", "udp", "icmp", "icmpv6", "sctp", ... */
  protocol: string;
  /** Seconds left. */
  timeout: number;
  /** TCP/SCTP state ("ESTABLISHED", "TIME_WAIT"), absent for stateless protocols. */
  state?: string;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
  /** "UNREPLIED", "ASSURED", ... */
  flags: string[];
  mark?: number;
}

/**
 * One line of `conntrack -L`, default or `-o extended` (which starts with "ipv4 2"): "tcp 6 59
 * ESTABLISHED src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. dst=.. sport=.. dport=.. [ASSURED]
 * mark=0 use=1". Undefined for a line that is not an entry (the count conntrack prints on stderr).
 */
export function parseConntrackLine(line: string): ConntrackEntry | undefined {
  const words = line.trim().split(/\s+/);
  if (words[0] === 'ipv4' || words[0] === 'ipv6') words.splice(0, 2);
  const [protocol, number, timeout] = words;
  if (!protocol || !/^\d+$/.test(number ?? '') || !/^\d+$/.test(timeout ?? '')) return undefined;
  const tuples: Array<Record<string, string>> = [];
  const flags: string[] = [];
  let state: string | undefined;
  let mark: number | undefined;
  for (const w of words.slice(3)) {
    const eq = w.indexOf('=');
    if (w.startsWith('[') && w.endsWith(']')) { flags.push(w.slice(1, -1)); continue; }
    if (eq < 0) { if (tuples.length === 0 && /^[A-Z_]+$/.test(w)) state = w; continue; }
    const k = w.slice(0, eq);
    const v = w.slice(eq + 1);
    if (k === 'mark') { mark = Number(v); continue; }
    // A new tuple starts at each src=; the first is the original direction, the second the reply.
    if (k === 'src') tuples.push({});
    if (tuples.length > 0 && tuples.length <= 2 && ['src', 'dst', 'sport', 'dport', 'type', 'code', 'id'].includes(k)) tuples[tuples.length - 1][k] = v;
  }
  if (tuples.length < 2) return undefined;
  const tuple = (t: Record<string, string>): ConntrackTuple => ({
    src: t.src, dst: t.dst,
    ...(t.sport !== undefined ? { sport: Number(t.sport) } : {}),
    ...(t.dport !== undefined ? { dport: Number(t.dport) } : {}),
    ...(t.type !== undefined ? { icmp: { type: Number(t.type), code: Number(t.code), id: Number(t.id) } } : {}),
  });
  return { protocol, timeout: Number(timeout), ...(state ? { state } : {}), orig: tuple(tuples[0]), reply: tuple(tuples[1]), flags, ...(mark !== undefined ? { mark } : {}) };
}

/** The count conntrack reports on stderr: "1 flow entries have been deleted." */
const reported = (text: string, verb: string) => Number(new RegExp(`(\\d+) flow entries have been ${verb}`).exec(text)?.[1] ?? 0);

async function conntrack(ns: Netns, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const { cmd, args: full } = ns.wrap('conntrack', args);
  return runCommand(cmd, full);
}

/** Every entry of one family, optionally of one protocol. */
export async function conntrackList(ns: Netns, opts: { family?: 'ipv4' | 'ipv6'; protocol?: string } = {}): Promise<ConntrackEntry[]> {
  const r = await conntrack(ns, ['-L', '-f', opts.family ?? 'ipv4', ...(opts.protocol ? ['-p', opts.protocol] : [])]);
  if (r.code !== 0) throw new ConntrackError(`conntrack -L: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.split('\n').map(parseConntrackLine).filter((e): e is ConntrackEntry => e !== undefined);
}

/** Deletes the entries whose original direction is `orig` (ports for TCP/UDP/SCTP); how many went. */
export async function conntrackDelete(ns: Netns, protocol: string, orig: ConntrackTuple): Promise<number> {
  const args = ['-D', '-p', protocol, '-s', orig.src, '-d', orig.dst];
  if (orig.sport !== undefined) args.push('--sport', String(orig.sport));
  if (orig.dport !== undefined) args.push('--dport', String(orig.dport));
  const r = await conntrack(ns, args);
  // conntrack exits 1 when nothing matched; that is "0 deleted", not a failure.
  if (r.code !== 0 && !/flow entries have been deleted/.test(r.stderr)) throw new ConntrackError(`conntrack ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return reported(r.stderr + r.stdout, 'deleted');
}

/**
 * Deletes the UDP flows a Service sent to one endpoint: original destination port `port` (and
 * address `dst`, a ClusterIP; a NodePort's any node address), answered by `endpoint`. How many went.
 */
export async function conntrackDeleteUdpTo(ns: Netns, o: { dst?: string; port: number; endpoint: string }): Promise<number> {
  const args = ['-D', '-p', 'udp', ...(o.dst ? ['--orig-dst', o.dst] : []), '--orig-port-dst', String(o.port), '--reply-src', o.endpoint];
  const r = await conntrack(ns, args);
  if (r.code !== 0 && !/flow entries have been deleted/.test(r.stderr)) throw new ConntrackError(`conntrack ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return reported(r.stderr + r.stdout, 'deleted');
}
