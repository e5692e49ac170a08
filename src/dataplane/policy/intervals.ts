// Address and port ranges as nft interval sets hold them. nft 1.0.6 refuses overlapping elements
// ("conflicting intervals specified", "File exists" in a concatenation) and keeps adjacent ones apart,
// so ranges are merged here into the one canonical form the kernel lists back. Pure.
import ipaddr from 'ipaddr.js';

export interface Range { family: 4 | 6; start: bigint; end: bigint }

const BITS = { 4: 32, 6: 128 } as const;

function toBig(addr: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return addr.toByteArray().reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}

function fromBig(n: bigint, family: 4 | 6): string {
  const bytes: number[] = [];
  for (let i = 0; i < (family === 4 ? 4 : 16); i++) { bytes.unshift(Number(n & 0xffn)); n >>= 8n; }
  return ipaddr.fromByteArray(bytes).toString();
}

/** One address, or a CIDR taken as its network (the API allows host bits: "10.0.0.5/8" is 10.0.0.0/8). */
export function cidrRange(text: string): Range {
  const [a, len] = text.includes('/') ? ipaddr.parseCIDR(text) : [ipaddr.parse(text), undefined];
  const family = a.kind() === 'ipv4' ? 4 : 6;
  const bits = BITS[family];
  const prefix = BigInt(len ?? bits);
  const span = (1n << (BigInt(bits) - prefix)) - 1n;
  const start = toBig(a) & ~span & ((1n << BigInt(bits)) - 1n);
  return { family, start, end: start + span };
}

export const addressRange = (ip: string): Range => cidrRange(ip);

/** The union of ranges of one family, sorted, overlapping and adjacent ones joined. */
export function mergeRanges(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.family === r.family && r.start <= last.end + 1n) { if (r.end > last.end) last.end = r.end; }
    else out.push({ ...r });
  }
  return out;
}

/** `from` minus every range of `holes` (an ipBlock's cidr minus its excepts). */
export function subtractRanges(from: Range, holes: Range[]): Range[] {
  let pieces: Range[] = [{ ...from }];
  for (const h of mergeRanges(holes.filter((x) => x.family === from.family))) {
    pieces = pieces.flatMap((p) => {
      if (h.end < p.start || h.start > p.end) return [p];
      const kept: Range[] = [];
      if (h.start > p.start) kept.push({ family: p.family, start: p.start, end: h.start - 1n });
      if (h.end < p.end) kept.push({ family: p.family, start: h.end + 1n, end: p.end });
      return kept;
    });
  }
  return pieces;
}

/** A range as nft lists it: "10.0.0.1", "10.0.0.0/24", or "10.0.0.1-10.0.0.5". */
export function nftRange(r: Range): string {
  if (r.start === r.end) return fromBig(r.start, r.family);
  const size = r.end - r.start + 1n;
  const aligned = (size & (size - 1n)) === 0n && (r.start & (size - 1n)) === 0n;
  if (aligned) return `${fromBig(r.start, r.family)}/${BITS[r.family] - (size.toString(2).length - 1)}`;
  return `${fromBig(r.start, r.family)}-${fromBig(r.end, r.family)}`;
}

/** Port ranges of one protocol, merged: [[80, 80], [81, 90]] → [[80, 90]]. */
export function mergePorts(ranges: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** "80" or "80-90", as nft lists a port element. */
export const nftPorts = ([a, b]: [number, number]): string => (a === b ? String(a) : `${a}-${b}`);
