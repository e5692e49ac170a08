// Address math for IPAM: strict parsing with ipaddr.js, arithmetic on BigInt, canonical text out.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

/** An address as a number, so ranges can be walked and compared. */
export interface Ip {
  version: Family;
  value: bigint;
}

export interface Cidr {
  ip: Ip;
  prefix: number;
}

export const bitsOf = (v: Family): number => (v === 4 ? 32 : 128);

/** Strict: IPv4 only as four decimal parts (no "10.1" or hex), IPv6 without a zone. */
export function parseIp(text: unknown): Ip | undefined {
  if (typeof text !== 'string') return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { version: 4, value: fromBytes(ipaddr.IPv4.parse(text).toByteArray()) };
  }
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) {
    return { version: 6, value: fromBytes(ipaddr.IPv6.parse(text).toByteArray()) };
  }
  return undefined;
}

/** "addr/prefix" with a decimal prefix that fits the family; host bits are allowed here. */
export function parseCidr(text: unknown): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const p = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  return prefix <= bitsOf(ip.version) ? { ip, prefix } : undefined;
}

function fromBytes(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Canonical text: dotted quad, or RFC 5952 compressed lowercase IPv6 (what Go's net.IP prints). */
export function formatIp(ip: Ip): string {
  if (ip.version === 4) {
    const v = Number(ip.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const bytes: number[] = new Array(16);
  let v = ip.value;
  for (let i = 15; i >= 0; i--) { bytes[i] = Number(v & 255n); v >>= 8n; }
  return ipaddr.fromByteArray(bytes).toString();
}

/** The canonical spelling of an address, or undefined when it is not one. */
export function canonicalIp(text: unknown): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip);
}

export function hostMask(version: Family, prefix: number): bigint {
  return (1n << BigInt(bitsOf(version) - prefix)) - 1n;
}

/** First and last address of the subnet that `c` names. */
export function subnetBounds(c: Cidr): { network: bigint; last: bigint } {
  const mask = hostMask(c.ip.version, c.prefix);
  const network = c.ip.value & ~mask;
  return { network, last: network | mask };
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.ip)}/${c.prefix}`;
