// ClusterIP and NodePort allocation, pure: what the API server's allocators do at Service creation.
// The store side (one key per address, created in the apply's transaction) lives in api/apply.ts; this
// decides which address, and why a requested one cannot be had.
import ipaddr from 'ipaddr.js';

/** An IPv4 CIDR as a numeric range of usable host addresses (network and broadcast excluded). */
interface Range { first: number; size: number }

const toInt = (ip: string): number => ipaddr.IPv4.parse(ip).toByteArray().reduce((a, b) => a * 256 + b, 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

function hostRange(cidr: string): Range {
  const [net, bits] = ipaddr.IPv4.parseCIDR(cidr);
  const base = toInt(net.toString()) - (toInt(net.toString()) % 2 ** (32 - bits));
  const total = 2 ** (32 - bits);
  // The first host address is the `kubernetes` Service's in Kubernetes; kept free here as well.
  return { first: base + 2, size: Math.max(0, total - 3) };
}

/** Why `ip` cannot be a ClusterIP of `serviceCIDR`, or undefined when it can (taken or not). */
export function clusterIPProblem(ip: string, serviceCIDR: string): string | undefined {
  if (!ipaddr.IPv4.isValidFourPartDecimal(ip)) return `"${ip}" is not an IPv4 address`;
  const [net, bits] = ipaddr.IPv4.parseCIDR(serviceCIDR);
  if (!ipaddr.IPv4.parse(ip).match(net, bits)) return `"${ip}" is not in the service CIDR ${serviceCIDR}`;
  const r = hostRange(serviceCIDR);
  const n = toInt(ip);
  if (n < r.first - 1 || n >= r.first + r.size) return `"${ip}" is the network or broadcast address of ${serviceCIDR}`;
  return undefined;
}

/**
 * A free ClusterIP: a random start, then the next free one up (wrapping), as Kubernetes spreads them so
 * a deleted Service's address is not handed out again at once. Undefined when the CIDR is full.
 */
export function allocateClusterIP(serviceCIDR: string, taken: ReadonlySet<string>, random: (n: number) => number): string | undefined {
  const r = hostRange(serviceCIDR);
  if (r.size === 0) return undefined;
  const start = random(r.size);
  for (let i = 0; i < r.size; i++) {
    const ip = toIp(r.first + ((start + i) % r.size));
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

export interface PortRange { min: number; max: number }

export function nodePortProblem(port: number, range: PortRange): string | undefined {
  if (port < range.min || port > range.max) return `${port} is outside the node port range ${range.min}-${range.max}`;
  return undefined;
}

/** A free node port from a random start, wrapping; undefined when the range is full. */
export function allocateNodePort(range: PortRange, taken: ReadonlySet<number>, random: (n: number) => number): number | undefined {
  const size = range.max - range.min + 1;
  const start = random(size);
  for (let i = 0; i < size; i++) {
    const port = range.min + ((start + i) % size);
    if (!taken.has(port)) return port;
  }
  return undefined;
}
