// Addresses as NetworkPolicy sees them, pure: which addresses are a pod's for matching, and an ipBlock
// as disjoint address ranges (its cidr taken as its network, minus its own excepts). The evaluator and
// the nft renderer both take these answers from here, so an address is in or out for both alike.
import ipaddr from 'ipaddr.js';
import type { NetworkPolicyPeer, Node, Pod } from '../api/types.js';

export type Family = 4 | 6;

/** An inclusive range of addresses of one family, as integers. */
export interface IpRange { family: Family; first: bigint; last: bigint }

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

interface Parsed { family: Family; value: bigint; text: string }

// Parsing dominates judging a connection (ipaddr.js costs ~10 us an address): each text is parsed once.
const parsed = new Map<string, Parsed | null>();

function parse(text: string): Parsed | undefined {
  let p = parsed.get(text);
  if (p === undefined) {
    if (parsed.size > 100_000) parsed.clear();
    if (ipaddr.isValid(text)) {
      const a = ipaddr.process(text);
      let v = 0n;
      for (const b of a.toByteArray()) v = (v << 8n) | BigInt(b);
      p = { family: a.kind() === 'ipv4' ? 4 : 6, value: v, text: a.toString() };
    } else {
      p = null;
    }
    parsed.set(text, p);
  }
  return p ?? undefined;
}

/** An address as (family, integer); IPv4-mapped IPv6 counts as IPv4; undefined when not an address. */
export function addressValue(text: string): { family: Family; value: bigint } | undefined {
  const p = parse(text);
  return p && { family: p.family, value: p.value };
}

/** One canonical text per address (IPv6 compressed, as nft prints it), so equal addresses compare equal. */
export function normalizeAddress(text: string): string | undefined {
  return parse(text)?.text;
}

/** The text of an address given as (family, integer). */
export function formatAddress(family: Family, value: bigint): string {
  const bytes: number[] = [];
  for (let i = BITS[family] / 8 - 1; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * The addresses a pod has for policy matching: status.podIPs, else status.podIP. None for a finished
 * pod (Succeeded, Failed: its address may be another's already), a pod without an address, or a
 * host-network pod (it is its node's address, which only ipBlock matches). A terminating pod still
 * runs through its grace period, so it keeps its addresses and stays isolated until it is gone.
 */
export function podAddresses(pod: Pod): string[] {
  if (pod.spec.hostNetwork || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return [];
  const listed = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
  const out: string[] = [];
  for (const ip of listed) {
    const n = normalizeAddress(ip);
    if (n !== undefined && !out.includes(n)) out.push(n);
  }
  return out;
}

/** A node's own addresses (its InternalIPs): traffic from one of them to the node's own pods always passes. */
export function nodeAddresses(node: Node): string[] {
  const out: string[] = [];
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== 'InternalIP') continue;
    const n = normalizeAddress(a.address);
    if (n !== undefined && !out.includes(n)) out.push(n);
  }
  return out;
}

/** A CIDR as a range; host bits set are cleared (the API takes "10.0.0.1/24" as 10.0.0.0/24). */
export function cidrRange(cidr: string): IpRange | undefined {
  const slash = cidr.indexOf('/');
  const addr = addressValue(slash < 0 ? cidr : cidr.slice(0, slash));
  if (!addr) return undefined;
  const bits = BITS[addr.family];
  // An IPv4-mapped IPv6 CIDR (::ffff:10.0.0.0/104) is the IPv4 CIDR it maps.
  const mapped = addr.family === 4 && cidr.includes(':');
  const prefix = slash < 0 ? bits : Number(cidr.slice(slash + 1)) - (mapped ? 96 : 0);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return undefined;
  const host = (1n << BigInt(bits - prefix)) - 1n;
  return { family: addr.family, first: addr.value & ~host, last: (addr.value & ~host) | host };
}

/** Sorts ranges and joins the ones that overlap or touch: disjoint, in order, per family (IPv4 first). */
export function mergeRanges(ranges: Iterable<IpRange>): IpRange[] {
  const sorted = [...ranges].sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: IpRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.family === r.family && r.first <= last.last + 1n) {
      if (r.last > last.last) last.last = r.last;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** `ranges` without the addresses of `cut`. */
export function subtractRange(ranges: IpRange[], cut: IpRange): IpRange[] {
  const out: IpRange[] = [];
  for (const r of ranges) {
    if (r.family !== cut.family || cut.last < r.first || cut.first > r.last) { out.push(r); continue; }
    if (cut.first > r.first) out.push({ family: r.family, first: r.first, last: cut.first - 1n });
    if (cut.last < r.last) out.push({ family: r.family, first: cut.last + 1n, last: r.last });
  }
  return out;
}

const blockCache = new WeakMap<object, IpRange[]>();

/**
 * An ipBlock peer's addresses: its cidr (as its network) minus its own excepts, as disjoint ranges in
 * order. Another peer may still allow an excepted range: except narrows only this peer. [] for a peer
 * without ipBlock, or with a cidr that does not parse (refused at apply).
 */
export function ipBlockRanges(peer: NetworkPolicyPeer): IpRange[] {
  const block = peer.ipBlock;
  if (!block) return [];
  const cached = blockCache.get(block);
  if (cached) return cached;
  const whole = cidrRange(block.cidr);
  let out: IpRange[] = whole ? [whole] : [];
  for (const e of block.except ?? []) {
    const cut = cidrRange(e);
    if (cut) out = subtractRange(out, cut);
  }
  out = mergeRanges(out);
  blockCache.set(block, out);
  return out;
}

/** Whether an address lies in any of the ranges. */
export function rangesContain(ranges: readonly IpRange[], address: string): boolean {
  const a = addressValue(address);
  return a !== undefined && ranges.some((r) => r.family === a.family && r.first <= a.value && a.value <= r.last);
}

/** A range as `nft list` prints an interval element: an address, a prefix when it is one, else first-last. */
export function formatRange(r: IpRange): string {
  if (r.first === r.last) return formatAddress(r.family, r.first);
  const size = r.last - r.first + 1n;
  const isPow2 = (size & (size - 1n)) === 0n;
  if (isPow2 && (r.first & (size - 1n)) === 0n) {
    let hostBits = 0;
    while ((1n << BigInt(hostBits)) < size) hostBits++;
    return `${formatAddress(r.family, r.first)}/${BITS[r.family] - hostBits}`;
  }
  return `${formatAddress(r.family, r.first)}-${formatAddress(r.family, r.last)}`;
}
