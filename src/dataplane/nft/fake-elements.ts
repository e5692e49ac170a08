// Set and map elements as values: a declaration's field types, an element's text checked against
// them and turned into numeric ranges (for overlap checks and packet lookups), and printed back the
// way `nft list` prints it ("10.0.3.0-10.0.3.255" → "10.0.3.0/24", "tcp . 100-100" → "tcp . 100"). Pure.
import ipaddr from 'ipaddr.js';

export type FieldType = 'ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service' | 'integer' | 'mark' | 'ifname';

/** What a set or map holds, read from its declaration lines. */
export interface SetType {
  key: FieldType[];
  /** A map's value: a verdict or a concatenation of data fields; absent for a set. */
  value?: 'verdict' | FieldType[];
  interval: boolean;
}

/** One field of an element as an inclusive range (a single value: lo = hi). */
export interface Range { lo: bigint; hi: bigint }

export interface Element { key: string; fields: Range[]; value: string }

export class ElementError extends Error {}

const TYPE_NAMES: Record<string, FieldType> = {
  ipv4_addr: 'ipv4_addr', ipv6_addr: 'ipv6_addr', inet_proto: 'inet_proto', inet_service: 'inet_service',
  integer: 'integer', mark: 'mark', ifname: 'ifname',
};

/** The type of a `typeof` expression, as nft derives it. */
export function typeOfExpr(expr: string): FieldType {
  const e = expr.trim();
  if (/^(ct (original|reply) )?ip (saddr|daddr)$/.test(e)) return 'ipv4_addr';
  if (/^(ct (original|reply) )?ip6 (saddr|daddr)$/.test(e)) return 'ipv6_addr';
  if (/^(meta l4proto|ip protocol|ip6 nexthdr|ct (original |reply )?protocol)$/.test(e)) return 'inet_proto';
  if (/^((th|tcp|udp|sctp) (dport|sport)|ct (original|reply) proto-(dst|src))$/.test(e)) return 'inet_service';
  if (/^numgen (random|inc) mod \d+( offset \d+)?$/.test(e)) return 'integer';
  if (/^(meta|ct) mark$/.test(e)) return 'mark';
  if (/^(meta )?(iifname|oifname)$/.test(e)) return 'ifname';
  throw new ElementError(`typeof ${e}: an expression the fake does not know`);
}

function fieldTypes(spec: string, typeOf: boolean): FieldType[] {
  return spec.split(/\s+\.\s+/).map((f) => {
    if (typeOf) return typeOfExpr(f);
    const t = TYPE_NAMES[f.trim()];
    if (!t) throw new ElementError(`type ${f.trim()}: a data type the fake does not know`);
    return t;
  });
}

/** The type of a set or map from its declaration lines ("typeof ip daddr . th dport : verdict", "flags interval"). */
export function setType(kind: 'set' | 'map', decl: string[]): SetType {
  const line = decl.find((d) => /^type(of)? /.test(d));
  if (!line) throw new ElementError(`a ${kind} without "type" or "typeof"`);
  const typeOf = line.startsWith('typeof ');
  const [keySpec, valueSpec] = line.replace(/^type(of)? /, '').split(' : ');
  const flags = decl.find((d) => d.startsWith('flags '))?.slice(6).split(',').map((f) => f.trim()) ?? [];
  const t: SetType = { key: fieldTypes(keySpec, typeOf), interval: flags.includes('interval') };
  if (kind === 'map') {
    if (valueSpec === undefined) throw new ElementError(`a map without a value type: ${line}`);
    t.value = valueSpec.trim() === 'verdict' ? 'verdict' : fieldTypes(valueSpec, typeOf);
  } else if (valueSpec !== undefined) throw new ElementError(`a set with a value type: ${line}`);
  return t;
}

const PROTOS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132 };
const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 2: 'igmp', 6: 'tcp', 17: 'udp', 47: 'gre', 50: 'esp', 51: 'ah', 58: 'ipv6-icmp', 132: 'sctp' };
const BITS: Partial<Record<FieldType, number>> = { ipv4_addr: 32, ipv6_addr: 128, inet_proto: 8, inet_service: 16, integer: 32, mark: 32 };

function addr(text: string, type: 'ipv4_addr' | 'ipv6_addr'): bigint {
  const want = type === 'ipv4_addr' ? 'ipv4' : 'ipv6';
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try { ip = ipaddr.parse(text); } catch { throw new ElementError(`"${text}": not an address (${type})`); }
  // nft 1.0.6 refuses an IPv6 address in an IPv4 set and the reverse with this resolver message.
  if (ip.kind() !== want || (want === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(text))) {
    throw new ElementError(`"${text}": Could not resolve hostname: Address family for hostname not supported (${type})`);
  }
  return ip.toByteArray().reduce((a, b) => (a << 8n) | BigInt(b), 0n);
}

/** A single value of one field ("10.0.0.1", "tcp", "80", "0x00004000", "\"eth0\""). */
export function parseValue(text: string, type: FieldType): bigint {
  const t = text.trim();
  switch (type) {
    case 'ipv4_addr': case 'ipv6_addr': return addr(t, type);
    case 'inet_proto': {
      const n = PROTOS[t] ?? (/^\d+$/.test(t) ? Number(t) : NaN);
      if (!(n >= 0 && n <= 255)) throw new ElementError(`"${t}": not a protocol`);
      return BigInt(n);
    }
    case 'ifname': {
      if (!/^"[^"]*"$/.test(t) && !/^[\w.-]+$/.test(t)) throw new ElementError(`"${t}": not an interface name`);
      return [...Buffer.from(t.replace(/"/g, ''))].reduce((a, b) => (a << 8n) | BigInt(b), 0n);
    }
    default: {
      if (!/^(\d+|0x[0-9a-fA-F]+)$/.test(t)) throw new ElementError(`"${t}": not a number (${type})`);
      const n = BigInt(t);
      if (n >= 1n << BigInt(BITS[type]!)) throw new ElementError(`"${t}": too large for ${type}`);
      return n;
    }
  }
}

/** One field of a key: a value, or in an interval set a prefix or a range. */
export function parseField(text: string, type: FieldType, interval: boolean): Range {
  const t = text.trim();
  const prefix = /^(.+)\/(\d+)$/.exec(t);
  const range = type === 'ipv6_addr' || type === 'ipv4_addr' || type === 'inet_service' || type === 'integer' || type === 'mark'
    ? /^([^-\s]+)-([^-\s]+)$/.exec(t) : null;
  if ((prefix || range) && !interval) throw new ElementError(`"${t}": a range in a set without "flags interval"`);
  if (prefix && (type === 'ipv4_addr' || type === 'ipv6_addr')) {
    const bits = BITS[type]!;
    const len = Number(prefix[2]);
    if (len > bits) throw new ElementError(`"${t}": prefix longer than ${bits}`);
    const host = (1n << BigInt(bits - len)) - 1n;
    const lo = addr(prefix[1], type) & ~host;
    return { lo, hi: lo | host };
  }
  if (range) {
    const lo = parseValue(range[1], type);
    const hi = parseValue(range[2], type);
    if (lo > hi) throw new ElementError(`"${t}": a range whose start is above its end`);
    return { lo, hi };
  }
  const v = parseValue(t, type);
  return { lo: v, hi: v };
}

function printValue(v: bigint, type: FieldType): string {
  switch (type) {
    case 'ipv4_addr': return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
    case 'ipv6_addr': {
      const bytes = Array.from({ length: 16 }, (_, i) => Number((v >> BigInt(8 * (15 - i))) & 255n));
      return ipaddr.fromByteArray(bytes).toString();
    }
    case 'inet_proto': return PROTO_NAMES[Number(v)] ?? String(v);
    case 'mark': return `0x${v.toString(16).padStart(8, '0')}`;
    case 'ifname': {
      const hex = v.toString(16);
      return `"${Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString()}"`;
    }
    default: return String(v);
  }
}

/** A field as nft prints it: a value, an address prefix when the range is one, else "lo-hi". */
export function printField(r: Range, type: FieldType): string {
  if (r.lo === r.hi) return printValue(r.lo, type);
  if (type === 'ipv4_addr' || type === 'ipv6_addr') {
    const size = r.hi - r.lo + 1n;
    if ((size & (size - 1n)) === 0n && (r.lo & (size - 1n)) === 0n) {
      return `${printValue(r.lo, type)}/${BITS[type]! - (size.toString(2).length - 1)}`;
    }
  }
  return `${printValue(r.lo, type)}-${printValue(r.hi, type)}`;
}

const split = (s: string) => s.split(/\s+\.\s+/);

/** A verdict as a map value: accept, drop, return, continue, jump/goto CHAIN. */
function parseVerdict(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  if (/^(accept|drop|return|continue)$/.test(t) || /^(jump|goto) [\w-]+$/.test(t)) return t;
  throw new ElementError(`"${t}": not a verdict`);
}

/** One element's text (as written or as listed), checked against the set's type. */
export function parseElement(text: string, t: SetType, keyOnly = false): Element {
  // Per-element attributes nft lists with dynamic sets; they are no part of the key.
  const clean = text.replace(/ (timeout|expires) \S+/g, '').replace(/ counter packets \d+ bytes \d+/g, '').replace(/ comment "[^"]*"/g, '').trim();
  const colon = clean.indexOf(' : ');
  const keyText = colon < 0 ? clean : clean.slice(0, colon);
  const valueText = colon < 0 ? undefined : clean.slice(colon + 3);
  if (t.value === undefined && valueText !== undefined) throw new ElementError(`"${text}": set is not a map`);
  if (t.value !== undefined && valueText === undefined && !keyOnly) throw new ElementError(`"${text}": a map element without a value (Invalid argument)`);
  const parts = split(keyText);
  if (parts.length !== t.key.length) {
    throw new ElementError(`"${text}": datatype mismatch, expected concatenation of (${t.key.join(', ')}), element has ${parts.length} field(s)`);
  }
  const fields = parts.map((p, i) => parseField(p, t.key[i], t.interval));
  let value = '';
  if (valueText === undefined) { /* a key to delete */ } else if (t.value === 'verdict') value = parseVerdict(valueText!);
  else if (t.value) {
    const vp = split(valueText!);
    if (vp.length !== t.value.length) throw new ElementError(`"${text}": value has ${vp.length} field(s), the map holds ${t.value.join(' . ')}`);
    value = vp.map((p, i) => printValue(parseValue(p, (t.value as FieldType[])[i]), (t.value as FieldType[])[i])).join(' . ');
  }
  return { key: fields.map((f, i) => printField(f, t.key[i])).join(' . '), fields, value };
}

/** Whether two elements' keys share a point (every field's ranges intersect). */
export function overlaps(a: Range[], b: Range[]): boolean {
  return a.every((r, i) => r.lo <= b[i].hi && b[i].lo <= r.hi);
}

/** Element order for a canonical dump: field by field, by value. */
export function compareElements(a: Element, b: Element): number {
  for (let i = 0; i < a.fields.length; i++) {
    const d = a.fields[i].lo - b.fields[i].lo || a.fields[i].hi - b.fields[i].hi;
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  return 0;
}

/** How many elements nft prints on one line of a listing (nft 1.0.6: addresses 2, numbers 5, else 1). */
export function perLine(t: SetType): number {
  if (t.key.length !== 1) return 1;
  if (t.key[0] === 'ipv4_addr') return 2;
  if (t.key[0] === 'ipv6_addr' || t.key[0] === 'ifname') return 1;
  return 5;
}
