// One nft rule applied to one packet, for the tracer (tracer.ts): its matches left to right, then its
// statements. Only the forms flatnet's tables use are understood (the proxy's skeleton, the policy
// table, the guard); anything else is a TraceError naming the rule, never a silent pass. Pure.
import ipaddr from 'ipaddr.js';
import { parseField, parseValue, typeOfExpr, type FieldType, type Range } from './fake-elements.js';
import type { FakeSet, FakeTable } from './fake.js';

export class TraceError extends Error {}

/** The packet as it moves through the hooks: NAT rewrites its destination, rules set its mark. */
export interface PacketState {
  family: 4 | 6;
  saddr: string;
  daddr: string;
  /** IP protocol number (6 tcp, 17 udp, 132 sctp, 1 icmp, 58 ipv6-icmp). */
  proto: number;
  sport?: number;
  dport?: number;
  ctState: 'new' | 'established' | 'related';
  /** ICMP's type by nft's name ("echo-request", "nd-neighbor-solicit"). */
  icmpType: string;
  /** TCP's flags by nft's names (a connection's first packet: ["syn"]). */
  tcpFlags: string[];
  mark: bigint;
  iifname?: string;
  oifname?: string;
  /** This node's addresses: `fib daddr type local`. */
  local: string[];
  /** The index `numgen random mod N` yields (taken mod N). */
  pick: number;
  /** The destination before DNAT (`ct original ip daddr`, `ct original proto-dst`). */
  original: { daddr: string; dport?: number };
  dnat: boolean;
  masquerade: boolean;
}

export type Verdict = { kind: 'accept' | 'drop' | 'return' | 'continue' } | { kind: 'jump' | 'goto'; chain: string };

/** What one rule did: whether all its matches held, the verdict it gave, and a line per statement. */
export interface RuleOutcome { matched: boolean; verdict?: Verdict; did: string[]; comment?: string; nat?: boolean }

/** Words of a rule; a quoted string or a `{ ... }` group is one word. */
export function tokenize(rule: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < rule.length) {
    if (/\s/.test(rule[i])) { i++; continue; }
    let j = i;
    if (rule[i] === '"') { j = rule.indexOf('"', i + 1) + 1 || rule.length; }
    else if (rule[i] === '{') {
      let depth = 0;
      for (; j < rule.length; j++) { if (rule[j] === '{') depth++; if (rule[j] === '}' && --depth === 0) { j++; break; } }
    } else { while (j < rule.length && !/\s/.test(rule[j])) j++; }
    out.push(rule.slice(i, j));
    i = j;
  }
  return out;
}

type Special = 'ct_state' | 'ct_status' | 'fib_type' | 'nfproto' | 'ifname_glob' | 'icmp_type';
interface Selector { text: string; type: FieldType | Special; get: (p: PacketState) => bigint | undefined }

const isL4 = (p: PacketState) => p.proto === 6 || p.proto === 17 || p.proto === 132;
const big = (a: string, type: 'ipv4_addr' | 'ipv6_addr') => parseValue(a, type);
const v4 = (p: PacketState, a: string) => (p.family === 4 ? big(a, 'ipv4_addr') : undefined);
const v6 = (p: PacketState, a: string) => (p.family === 6 ? big(a, 'ipv6_addr') : undefined);
const num = (n: number | undefined) => (n === undefined ? undefined : BigInt(n));
const PROTO_OF: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/** The selector starting at t[i] ("ip saddr", "meta l4proto", "numgen random mod 2"), and where it ends. */
function selector(t: string[], i: number): [Selector, number] | undefined {
  const two = `${t[i]} ${t[i + 1]}`;
  const simple: Record<string, Selector['get']> = {
    'ip saddr': (p) => v4(p, p.saddr), 'ip daddr': (p) => v4(p, p.daddr), 'ip protocol': (p) => (p.family === 4 ? BigInt(p.proto) : undefined),
    'ip6 saddr': (p) => v6(p, p.saddr), 'ip6 daddr': (p) => v6(p, p.daddr), 'ip6 nexthdr': (p) => (p.family === 6 ? BigInt(p.proto) : undefined),
    'meta l4proto': (p) => BigInt(p.proto), 'meta mark': (p) => p.mark,
    'th dport': (p) => (isL4(p) ? num(p.dport) : undefined), 'th sport': (p) => (isL4(p) ? num(p.sport) : undefined),
  };
  if (simple[two]) return [{ text: two, type: typeOfExpr(two), get: simple[two] }, i + 2];
  if (/^(tcp|udp|sctp) (dport|sport)$/.test(two)) {
    const want = PROTO_OF[t[i]];
    return [{ text: two, type: 'inet_service', get: (p) => (p.proto === want ? num(t[i + 1] === 'dport' ? p.dport : p.sport) : undefined) }, i + 2];
  }
  if (two === 'ct state') return [{ text: two, type: 'ct_state', get: () => 0n }, i + 2];
  if (two === 'ct status') return [{ text: two, type: 'ct_status', get: () => 0n }, i + 2];
  if (two === 'icmp type' || two === 'icmpv6 type') {
    // Implies its protocol: ICMP for `icmp type` (IPv4), ICMPv6 for `icmpv6 type`.
    const want = t[i] === 'icmp' ? 1 : 58;
    return [{ text: two, type: 'icmp_type', get: (p) => (p.proto === want ? 0n : undefined) }, i + 2];
  }
  if (two === 'meta nfproto') return [{ text: two, type: 'nfproto', get: (p) => BigInt(p.family) }, i + 2];
  if (t[i] === 'ct' && t[i + 1] === 'original') {
    const rest = `${t[i + 2]} ${t[i + 3]}`;
    if (rest === 'ip daddr') return [{ text: `ct original ${rest}`, type: 'ipv4_addr', get: (p) => v4(p, p.original.daddr) }, i + 4];
    if (t[i + 2] === 'proto-dst') return [{ text: 'ct original proto-dst', type: 'inet_service', get: (p) => (isL4(p) ? num(p.original.dport) : undefined) }, i + 3];
    return undefined;
  }
  if (t[i] === 'fib') {
    let j = i + 1;
    const words = ['fib'];
    while (j < t.length && !['type', 'oif', 'oifname'].includes(t[j])) words.push(t[j++]);
    words.push(t[j]);
    if (words.join(' ') === 'fib daddr type') return [{ text: 'fib daddr type', type: 'fib_type', get: () => 0n }, j + 1];
    throw new TraceError(`"${words.join(' ')}": a route lookup the tracer cannot make (it knows no routes)`);
  }
  if (t[i] === 'numgen' && t[i + 1] === 'random' && t[i + 2] === 'mod' && /^\d+$/.test(t[i + 3])) {
    const mod = Number(t[i + 3]);
    const offset = t[i + 4] === 'offset' ? Number(t[i + 5]) : 0;
    return [{ text: `numgen random mod ${mod}`, type: 'integer', get: (p) => BigInt((p.pick % mod) + offset) }, offset ? i + 6 : i + 4];
  }
  if (t[i] === 'iifname' || t[i] === 'oifname' || (t[i] === 'meta' && (t[i + 1] === 'iifname' || t[i + 1] === 'oifname'))) {
    const name = t[i] === 'meta' ? t[i + 1] : t[i];
    return [{ text: name, type: 'ifname_glob', get: () => 0n }, t[i] === 'meta' ? i + 2 : i + 1];
  }
  return undefined;
}

const unquote = (s: string) => s.replace(/^"|"$/g, '');
const inner = (group: string) => group.slice(1, -1).split(',').map((s) => s.trim()).filter(Boolean);

/** Whether `values` (one per field) fall in the fields of a key. */
const within = (values: bigint[], fields: Range[]) => values.every((v, k) => fields[k].lo <= v && v <= fields[k].hi);

function lookup(table: FakeTable, ref: string): FakeSet {
  const s = table.sets.get(ref.slice(1));
  if (!s) throw new TraceError(`${ref}: no such set or map in table ${table.family} ${table.name}`);
  return s;
}

/** A literal or `{ a, b }` operand as key ranges, typed by the selectors it is compared with. */
function literalKeys(operand: string, types: FieldType[]): Range[][] {
  const items = operand.startsWith('{') ? inner(operand) : [operand];
  return items.map((it) => {
    const parts = it.split(/\s+\.\s+/);
    if (parts.length !== types.length) throw new TraceError(`"${it}": ${parts.length} field(s) against ${types.join(' . ')}`);
    return parts.map((x, k) => parseField(x, types[k], true));
  });
}

function parseVerdict(text: string): Verdict {
  const [w, c] = text.split(' ');
  if (w === 'jump' || w === 'goto') return { kind: w, chain: c };
  if (w === 'accept' || w === 'drop' || w === 'return' || w === 'continue') return { kind: w };
  throw new TraceError(`"${text}": not a verdict`);
}

/** Evaluates one special (non-field) match: ct state, ct status, fib daddr type, meta nfproto, iifname. */
function special(sel: Selector, operand: string, p: PacketState): boolean {
  const names = operand.startsWith('{') ? inner(operand) : operand.split(',');
  switch (sel.type) {
    case 'ct_state': return names.includes(p.ctState);
    case 'ct_status':
      if (names.some((n) => n !== 'dnat')) throw new TraceError(`ct status ${operand}: only "dnat" is known`);
      return p.dnat;
    case 'fib_type':
      if (names.some((n) => n !== 'local')) throw new TraceError(`fib daddr type ${operand}: only "local" is known`);
      return p.local.includes(p.daddr);
    case 'nfproto': return names.includes(p.family === 4 ? 'ipv4' : 'ipv6');
    case 'icmp_type': return sel.get(p) !== undefined && names.includes(p.icmpType);
    default: {
      const have = sel.text === 'iifname' ? p.iifname : p.oifname;
      if (have === undefined) return false;
      return names.map(unquote).some((n) => (n.endsWith('*') ? have.startsWith(n.slice(0, -1)) : have === n));
    }
  }
}

/** Applies one rule to the packet (changing it when a statement says so). Throws TraceError on a form it does not know. */
export function evalRule(rule: string, table: FakeTable, p: PacketState): RuleOutcome {
  const t = tokenize(rule);
  const out: RuleOutcome = { matched: true, did: [] };
  const c = t.indexOf('comment');
  if (c >= 0) { out.comment = unquote(t[c + 1] ?? ''); t.splice(c, 2); }
  let i = 0;
  const fail = () => ({ ...out, matched: false });
  while (i < t.length) {
    const w = t[i];
    // Statements that end the rule.
    if (['accept', 'drop', 'return', 'continue', 'jump', 'goto'].includes(w)) {
      const text = w === 'jump' || w === 'goto' ? `${w} ${t[i + 1]}` : w;
      const after = t.slice(i + text.split(' ').length);
      if (after.length) throw new TraceError(`"${after.join(' ')}" after the verdict "${text}"`);
      out.verdict = parseVerdict(text);
      out.did.push(text);
      return out;
    }
    if (w === 'reject') {
      const how = t.slice(i).join(' ');
      // `reject with tcp reset` carries an implicit "meta l4proto tcp" (nft adds the dependency).
      if (how.includes('tcp reset') && p.proto !== 6) return fail();
      out.verdict = { kind: 'drop' };
      out.did.push(how);
      return out;
    }
    if (w === 'masquerade') { p.masquerade = true; out.nat = true; out.verdict = { kind: 'accept' }; out.did.push('masquerade'); return out; }
    if (w === 'dnat') return dnat(t, i, table, p, out);
    // Statements that let the rule go on.
    if (w === 'counter') { i++; while (t[i] === 'packets' || t[i] === 'bytes') i += 2; continue; }
    if (w === 'notrack') { i++; continue; }
    if (w === 'log') { i++; while (['prefix', 'level', 'flags', 'group'].includes(t[i])) i += 2; continue; }
    // `limit rate N/unit [burst N packets]`: a packet traced alone is always under the rate.
    if (w === 'limit' && t[i + 1] === 'rate') { i += 3; if (t[i] === 'burst') i += 3; continue; }
    if (w === 'update' && t[i + 1]?.startsWith('@')) { out.did.push(`update ${t[i + 1]} (session affinity memory: not modelled)`); i += 3; continue; }
    if (w === 'meta' && t[i + 1] === 'mark' && t[i + 2] === 'set') {
      let v: bigint;
      if (t[i + 3] === 'meta' && t[i + 4] === 'mark' && (t[i + 5] === '|' || t[i + 5] === '&')) {
        const x = parseValue(t[i + 6], 'mark');
        v = t[i + 5] === '|' ? p.mark | x : p.mark & x;
        i += 7;
      } else { v = parseValue(t[i + 3], 'mark'); i += 4; }
      p.mark = v;
      out.did.push(`mark set 0x${v.toString(16).padStart(8, '0')}`);
      continue;
    }
    // `tcp flags [!=|==] VALUE [/ MASK]`: the flags under the mask equal the value's (comma lists).
    if (w === 'tcp' && t[i + 1] === 'flags') {
      if (p.proto !== 6) return fail();
      i += 2;
      let negate = false;
      if (t[i] === '!=' || t[i] === '==') { negate = t[i] === '!='; i++; }
      const value = t[i++].split(',');
      const mask = t[i] === '/' ? t[(i += 2) - 1].split(',') : undefined;
      const under = (flags: string[]) => (mask ? flags.filter((f) => mask.includes(f)) : flags).sort().join(',');
      if ((under(p.tcpFlags) === under(value)) === negate) return fail();
      continue;
    }
    // A match: selectors joined by ".", an operator, an operand.
    const sels: Selector[] = [];
    for (;;) {
      const s = selector(t, i);
      if (!s) throw new TraceError(`"${t.slice(i).join(' ')}": a form the tracer does not know`);
      sels.push(s[0]);
      i = s[1];
      if (t[i] !== '.') break;
      i++;
    }
    let mask: bigint | undefined;
    if (t[i] === '&') { mask = parseValue(t[i + 1], 'mark'); i += 2; }
    let negate = false;
    if (t[i] === '!=' || t[i] === '==') { negate = t[i] === '!='; i++; }
    if (t[i] === 'vmap') {
      const hit = find(sels, t[i + 1], table, p);
      i += 2;
      if (hit === undefined) return fail();
      out.verdict = parseVerdict(hit.value);
      out.did.push(`${hit.value} (${sels.map((s) => s.text).join(' . ')} ${hit.key} in ${t[i - 1].startsWith('@') ? t[i - 1] : 'a verdict map'})`);
      if (i < t.length) throw new TraceError(`"${t.slice(i).join(' ')}" after a vmap`);
      return out;
    }
    const operand = t[i++];
    if (operand === undefined) throw new TraceError(`"${sels.map((s) => s.text).join(' . ')}" without a value`);
    let ok: boolean;
    if (sels.length === 1 && !['ipv4_addr', 'ipv6_addr', 'inet_proto', 'inet_service', 'integer', 'mark', 'ifname'].includes(sels[0].type)) {
      // `icmp type` of a TCP packet fails the rule, negated or not (its implied protocol match fails).
      if (sels[0].get(p) === undefined) return fail();
      ok = special(sels[0], operand, p);
    } else if (mask !== undefined) {
      const v = sels[0].get(p);
      ok = v !== undefined && (v & mask) === parseValue(operand, 'mark');
    } else {
      const values = sels.map((s) => s.get(p));
      // A selector that does not apply (an IPv4 field of an IPv6 packet, a port of ICMP) fails the rule.
      if (values.some((v) => v === undefined)) return fail();
      ok = find(sels, operand, table, p) !== undefined;
    }
    if (ok === negate) return fail();
  }
  return out;
}

/** The element a packet's key finds in `@set`, `{ ... }` or a literal; undefined when none. */
function find(sels: Selector[], operand: string, table: FakeTable, p: PacketState): { key: string; value: string } | undefined {
  const values = sels.map((s) => s.get(p));
  if (values.some((v) => v === undefined)) return undefined;
  const vals = values as bigint[];
  if (operand.startsWith('@')) {
    const s = lookup(table, operand);
    if (s.type.key.length !== sels.length) throw new TraceError(`${operand} holds ${s.type.key.join(' . ')}, looked up with ${sels.map((x) => x.text).join(' . ')}`);
    for (const e of s.elements.values()) if (within(vals, e.fields)) return { key: e.key, value: e.value };
    return undefined;
  }
  if (operand.startsWith('{') && operand.includes(' : ')) {
    // An anonymous verdict map: { key : verdict, ... }
    for (const item of inner(operand)) {
      const [k, v] = item.split(' : ');
      if (literalKeys(k, sels.map((s) => s.type as FieldType)).some((f) => within(vals, f))) return { key: k, value: v };
    }
    return undefined;
  }
  return literalKeys(operand, sels.map((s) => s.type as FieldType)).some((f) => within(vals, f)) ? { key: operand, value: '' } : undefined;
}

/** `dnat ip to KEY map @m` (the proxy's endpoint pick) or `dnat ip to ADDR[:PORT]`; a miss in the map does not match. */
function dnat(t: string[], i: number, table: FakeTable, p: PacketState, out: RuleOutcome): RuleOutcome {
  let j = i + 1;
  if (t[j] === 'ip' || t[j] === 'ip6') j++;
  if (t[j] !== 'to') throw new TraceError(`"${t.slice(i).join(' ')}": dnat without "to"`);
  j++;
  const m = t.indexOf('map', j);
  let addr: string;
  let port: number | undefined;
  if (m >= 0) {
    const sels: Selector[] = [];
    while (j < m) {
      const s = selector(t, j);
      if (!s) throw new TraceError(`"${t.slice(j, m).join(' ')}": a dnat key the tracer does not know`);
      sels.push(s[0]);
      j = s[1];
      if (t[j] === '.') j++;
    }
    const hit = find(sels, t[m + 1], table, p);
    if (!hit) return { ...out, matched: false, did: [...out.did, `no element of ${t[m + 1]} for this packet`] };
    [addr, port] = ((): [string, number | undefined] => { const [a, b] = hit.value.split(' . '); return [a, b === undefined ? undefined : Number(b)]; })();
  } else {
    const target = t[j];
    const v6 = /^\[(.+)\](?::(\d+))?$/.exec(target);
    const v4m = /^([\d.]+)(?::(\d+))?$/.exec(target);
    const hit = v6 ?? v4m;
    if (!hit || !ipaddr.isValid(hit[1])) throw new TraceError(`dnat to "${target}": not an address[:port]`);
    addr = hit[1];
    port = hit[2] === undefined ? undefined : Number(hit[2]);
  }
  p.daddr = addr;
  if (port !== undefined) p.dport = port;
  p.dnat = true;
  out.nat = true;
  out.verdict = { kind: 'accept' };
  out.did.push(`dnat to ${addr}${port === undefined ? '' : `:${port}`}`);
  return out;
}
