// A packet tracer over rendered nft tables: which base chains a packet meets on one node, in hook and
// priority order across tables, what each rule did to it, and the verdict. It applies the proxy's DNAT
// before the filter hooks, so "policy is judged after Service DNAT" can be shown without a kernel.
// Pure: the tables are read with the in-memory nftables (fake.ts), the rules evaluated by tracer-rule.ts.
import { FakeNft, type FakeChain, type FakeTable } from './fake.js';
import { TraceError, evalRule, type PacketState } from './tracer-rule.js';

export { TraceError };

export interface TracePacket {
  family: 4 | 6;
  /**
   * Where the packet goes on this node: 'forward' (pod to pod, pod to a ClusterIP) and 'input' (to the
   * node itself) arrive through prerouting; 'output' is sent by the node. After prerouting a
   * destination among `local` goes to input, one DNAT sent elsewhere to forward, whatever was said.
   */
  hook: 'forward' | 'input' | 'output';
  saddr: string;
  daddr: string;
  protocol: 'tcp' | 'udp' | 'sctp' | 'icmp';
  sport?: number;
  dport?: number;
  ctState: 'new' | 'established' | 'related';
  /** For ICMP: its type as nft names it; "echo-request" (a ping) by default. */
  icmpType?: string;
  /** For TCP: its flags as nft names them; ["syn"] for a new connection, ["ack"] otherwise, by default. */
  tcpFlags?: string[];
  mark?: number;
  iifname?: string;
  oifname?: string;
  /** This node's addresses, for `fib daddr type local` (NodePorts); none by default. */
  local?: string[];
  /** The index `numgen random mod N` picks (taken mod N); 0 by default. */
  pick?: number;
}

export interface TraceStep {
  /** "inet flatnet-policy" */
  table: string;
  chain: string;
  hook: string;
  /** The rule as listed; '' for a chain's policy or a chain skipped. */
  rule: string;
  comment?: string;
  /** What it did: "no match", "goto ig-0a1b2c3d (...)", "dnat to 10.244.1.5:8080", "policy accept". */
  did: string;
}

export interface TraceResult {
  verdict: 'accept' | 'drop';
  path: TraceStep[];
  /** The packet after NAT. */
  packet: TracePacket & { masquerade: boolean };
}

interface BaseChain { table: FakeTable; chain: FakeChain; type: string; hook: string; priority: number; policy: string; order: number }

// nft's standard priority names (nft 1.0.6, doc "PRIORITY"); the same numbers for every family flatnet uses.
const PRIORITIES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/** "filter + 10" → 10, "dstnat" → -100, "-100" → -100. */
export function parsePriority(text: string): number {
  const m = /^(-?\d+|[a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(text.trim());
  const base = m && (/^-?\d+$/.test(m[1]) ? Number(m[1]) : PRIORITIES[m[1]]);
  if (!m || base === undefined || base === null) throw new TraceError(`priority "${text}": not a number or a standard name`);
  return base + (m[2] ? (m[2] === '+' ? 1 : -1) * Number(m[3]) : 0);
}

function baseChains(tables: FakeTable[], family: 4 | 6): BaseChain[] {
  const out: BaseChain[] = [];
  for (const table of tables) {
    if ((table.family === 'ip' && family !== 4) || (table.family === 'ip6' && family !== 6)) continue;
    for (const chain of table.chains.values()) {
      if (!chain.decl.length) continue;
      const m = /^type (\w+) hook (\w+) priority (.+); policy (\w+);$/.exec(chain.decl[0]);
      if (!m) throw new TraceError(`${table.family} ${table.name} chain ${chain.name}: base chain "${chain.decl[0]}" not understood`);
      out.push({ table, chain, type: m[1], hook: m[2], priority: parsePriority(m[3]), policy: m[4], order: out.length });
    }
  }
  return out;
}

const PROTO: Record<string, [number, number]> = { tcp: [6, 6], udp: [17, 17], sctp: [132, 132], icmp: [1, 58] };

/** Runs the packet through the tables' base chains on one node. Throws TraceError on a rule it cannot evaluate. */
export function traceNft(rulesets: string[], packet: TracePacket): TraceResult {
  return new RulesetTracer(rulesets).trace(packet);
}

/** One node's rulesets, read once, for many packets (a table of 1,000 policies takes a while to read). */
export class RulesetTracer {
  private readonly fake = new FakeNft({ duplicateAdd: 'kernel' });

  constructor(rulesets: string[]) {
    for (const text of rulesets) {
      try { this.fake.applySync(text); } catch (err) { throw new TraceError(`ruleset not read: ${(err as Error).message}`, { cause: err }); }
    }
  }

  trace(packet: TracePacket): TraceResult { return tracePacket(this.fake, packet); }
}

function tracePacket(fake: FakeNft, packet: TracePacket): TraceResult {
  const chains = baseChains([...fake.state().values()], packet.family);
  const p: PacketState = {
    family: packet.family, saddr: packet.saddr, daddr: packet.daddr, proto: PROTO[packet.protocol][packet.family === 4 ? 0 : 1],
    sport: packet.sport, dport: packet.dport, ctState: packet.ctState, icmpType: packet.icmpType ?? 'echo-request',
    tcpFlags: packet.tcpFlags ?? (packet.ctState === 'new' ? ['syn'] : ['ack']), mark: BigInt(packet.mark ?? 0),
    iifname: packet.iifname, oifname: packet.oifname, local: packet.local ?? [], pick: packet.pick ?? 0,
    original: { daddr: packet.daddr, dport: packet.dport }, dnat: false, masquerade: false,
  };
  const path: TraceStep[] = [];
  const finish = (verdict: 'accept' | 'drop'): TraceResult => ({
    verdict, path,
    packet: { ...packet, saddr: p.saddr, daddr: p.daddr, dport: p.dport, mark: Number(p.mark), masquerade: p.masquerade },
  });
  const run = (hook: string) => runHook(hook, chains, p, path);
  if (packet.hook === 'output') {
    if (run('output') === 'drop') return finish('drop');
    return finish(run('postrouting'));
  }
  if (run('prerouting') === 'drop') return finish('drop');
  // Routing after prerouting: to this node's own address, input; DNAT elsewhere, forward; else as said.
  const next = p.local.includes(p.daddr) ? 'input' : p.dnat ? 'forward' : packet.hook;
  if (run(next) === 'drop') return finish('drop');
  if (next === 'forward') return finish(run('postrouting'));
  return finish('accept');
}

/** One hook: its base chains by priority; a drop ends the packet, an accept ends only that chain. */
function runHook(hook: string, chains: BaseChain[], p: PacketState, path: TraceStep[]): 'accept' | 'drop' {
  const here = chains.filter((c) => c.hook === hook).sort((a, b) => a.priority - b.priority || a.order - b.order);
  let natDone = false;
  for (const c of here) {
    const table = `${c.table.family} ${c.table.name}`;
    if (c.type === 'nat' && (p.ctState !== 'new' || natDone)) {
      // Only a connection's first packet meets nat chains; later ones take the same mapping from conntrack.
      path.push({ table, chain: c.chain.name, hook, rule: '', did: p.ctState !== 'new' ? 'skipped: nat chains see only a new connection' : 'skipped: this hook\'s NAT is already done' });
      continue;
    }
    const r = runChain(c.table, c.chain, hook, p, path, 0);
    if (r.nat) natDone = true;
    const verdict = r.verdict === 'return' ? c.policy : r.verdict;
    if (r.verdict === 'return') path.push({ table, chain: c.chain.name, hook, rule: '', did: `policy ${c.policy}` });
    if (verdict === 'drop') return 'drop';
    if (verdict !== 'accept') throw new TraceError(`${table} chain ${c.chain.name}: policy "${verdict}" not understood`);
  }
  return 'accept';
}

/** A chain and those it jumps to; 'return' when it runs off its end (or returns). */
function runChain(table: FakeTable, chain: FakeChain, hook: string, p: PacketState, path: TraceStep[], depth: number): { verdict: 'accept' | 'drop' | 'return'; nat: boolean } {
  if (depth > 32) throw new TraceError(`${table.family} ${table.name} chain ${chain.name}: jumps nested deeper than 32 (a loop?)`);
  const name = `${table.family} ${table.name}`;
  for (const rule of chain.rules) {
    let r;
    try {
      r = evalRule(rule, table, p);
    } catch (err) {
      throw new TraceError(`${name} chain ${chain.name} rule "${rule}": ${(err as Error).message}`, { cause: err });
    }
    path.push({ table: name, chain: chain.name, hook, rule, comment: r.comment, did: r.matched ? r.did.join('; ') || 'matched' : (r.did.length ? r.did.join('; ') : 'no match') });
    if (!r.matched || !r.verdict) continue;
    const v = r.verdict;
    if (v.kind === 'accept' || v.kind === 'drop') return { verdict: v.kind, nat: !!r.nat };
    if (v.kind === 'return') return { verdict: 'return', nat: false };
    if (v.kind !== 'jump' && v.kind !== 'goto') continue;
    const target = table.chains.get(v.chain);
    if (!target) throw new TraceError(`${name} chain ${chain.name} rule "${rule}": ${v.kind} to missing chain ${v.chain}`);
    const sub = runChain(table, target, hook, p, path, depth + 1);
    // goto does not come back here: the chain that was gone to returns to this chain's caller.
    if (v.kind === 'goto' || sub.verdict !== 'return') return sub;
  }
  return { verdict: 'return', nat: false };
}
