// Validates host-local's `ipam` keys and resolves every default, so the allocator never sees a bad range.
import { CniCode, CniError } from '../cni/errors.js';
import type { CniRoute } from '../cni/types.js';
import type { ParsedIpam, ParsedRange, RangeConf } from './types.js';
import { bitsOf, formatIp, parseCidr, parseIp, subnetBounds, type Family, type Ip } from './addr.js';

export const DEFAULT_DATA_DIR = '/run/flatnet/networks';
const ACCEPTED_TYPES = ['flatnet-cni', 'host-local'];

const invalid = (msg: string) => new CniError(CniCode.InvalidConfig, msg);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);
const famName = (v: Family) => `IPv${v}`;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A range with its bounds as numbers, kept beside the config path that produced it. */
interface Resolved {
  path: string;
  range: ParsedRange;
  start: bigint;
  end: bigint;
}

export const describeRange = (r: ParsedRange): string => `${r.subnet}, ${r.rangeStart}-${r.rangeEnd}`;

function optionalString(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${path}.${key}: expected a string, got ${show(v)}`);
  return v;
}

/** An address of the range config: must parse, be of the subnet's family and inside the subnet. */
function addressIn(text: string, field: string, version: Family, network: bigint, last: bigint, subnet: string): Ip {
  const ip = parseIp(text);
  if (!ip) throw invalid(`${field}: ${show(text)} is not a valid IP address`);
  if (ip.version !== version) {
    throw invalid(`${field}: ${show(text)} is ${famName(ip.version)} but subnet ${subnet} is ${famName(version)}`);
  }
  if (ip.value < network || ip.value > last) throw invalid(`${field}: ${show(text)} is outside subnet ${subnet}`);
  return ip;
}

function resolveRange(raw: unknown, path: string): Resolved {
  if (!isObject(raw)) throw invalid(`${path}: expected an object with "subnet", got ${show(raw)}`);
  const f = (key: string) => `${path}.${key}`;
  const subnetText = optionalString(raw, 'subnet', path);
  if (subnetText === undefined) throw invalid(`${f('subnet')}: missing`);
  const cidr = parseCidr(subnetText);
  if (!cidr) throw invalid(`${f('subnet')}: ${show(subnetText)} is not a valid CIDR (e.g. "10.244.1.0/24")`);
  const { version } = cidr.ip;
  const { network, last } = subnetBounds(cidr);
  const subnet = `${formatIp({ version, value: network })}/${cidr.prefix}`;
  if (network !== cidr.ip.value) throw invalid(`${f('subnet')}: ${show(subnetText)} has host bits set (network is ${subnet})`);
  if (cidr.prefix >= bitsOf(version) - 1) {
    throw invalid(`${f('subnet')}: ${show(subnetText)} is too small to allocate from (${famName(version)} needs /${bitsOf(version) - 2} or shorter)`);
  }
  const at = (key: keyof RangeConf, dflt: bigint): Ip => {
    const text = optionalString(raw, key, path);
    return text === undefined ? { version, value: dflt } : addressIn(text, f(key), version, network, last, subnet);
  };
  // host-local's defaults: start and gateway at network+1; end before the IPv4 broadcast, or the last IPv6 address.
  const start = at('rangeStart', network + 1n);
  const end = at('rangeEnd', version === 4 ? last - 1n : last);
  const gateway = at('gateway', network + 1n);
  if (start.value > end.value) {
    throw invalid(`${f('rangeStart')}: ${formatIp(start)} is after rangeEnd ${formatIp(end)}`);
  }
  // The allocator never hands out the gateway, the network address or the IPv4 broadcast.
  const excluded = new Set([gateway.value, network, ...(version === 4 ? [last] : [])]);
  const skipped = [...excluded].filter((v) => v >= start.value && v <= end.value).length;
  if (end.value - start.value + 1n === BigInt(skipped)) {
    throw invalid(`${path}: ${formatIp(start)}-${formatIp(end)} holds no allocatable address (gateway ${formatIp(gateway)}, subnet ${subnet})`);
  }
  const range: ParsedRange = {
    subnet, prefixLength: cidr.prefix, version,
    rangeStart: formatIp(start), rangeEnd: formatIp(end), gateway: formatIp(gateway),
  };
  return { path, range, start: start.value, end: end.value };
}

function resolveRangeSet(raw: unknown, path: string): Resolved[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw invalid(`${path}: expected a non-empty array of ranges, got ${show(raw)}`);
  }
  const set = raw.map((r, j) => resolveRange(r, `${path}[${j}]`));
  const first = set[0];
  for (const r of set.slice(1)) {
    if (r.range.version !== first.range.version) {
      throw invalid(`${r.path}.subnet: ${show(r.range.subnet)} is ${famName(r.range.version)} but ${first.path} is ${famName(first.range.version)}: one range set holds one family`);
    }
  }
  return set;
}

function parseRoutes(raw: unknown): CniRoute[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid(`ipam.routes: expected an array, got ${show(raw)}`);
  return raw.map((r, i) => {
    const path = `ipam.routes[${i}]`;
    if (!isObject(r)) throw invalid(`${path}: expected an object with "dst", got ${show(r)}`);
    const dst = parseCidr(r.dst);
    if (!dst) throw invalid(`${path}.dst: ${show(r.dst)} is not a valid CIDR (e.g. "0.0.0.0/0")`);
    const { network } = subnetBounds(dst);
    const dstText = `${formatIp({ version: dst.ip.version, value: network })}/${dst.prefix}`;
    if (network !== dst.ip.value) throw invalid(`${path}.dst: ${show(r.dst)} has host bits set (network is ${dstText})`);
    const route: CniRoute = { dst: dstText };
    if (r.gw !== undefined && r.gw !== null) {
      const gw = parseIp(r.gw);
      if (!gw) throw invalid(`${path}.gw: ${show(r.gw)} is not a valid IP address`);
      if (gw.version !== dst.ip.version) {
        throw invalid(`${path}.gw: ${show(r.gw)} is ${famName(gw.version)} but dst ${dstText} is ${famName(dst.ip.version)}`);
      }
      route.gw = formatIp(gw);
    }
    return route;
  });
}

/** Ranges may not share an address, neither within a set nor across sets (host-local refuses it too). */
function checkOverlaps(all: Resolved[]): void {
  for (let i = 0; i < all.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = all[i], b = all[j];
      if (a.range.version === b.range.version && a.start <= b.end && b.start <= a.end) {
        throw invalid(`${a.path} (${describeRange(a.range)}) overlaps ${b.path} (${describeRange(b.range)})`);
      }
    }
  }
}

export function parseIpamConf(raw: unknown, networkName: string): ParsedIpam {
  if (!isObject(raw)) throw invalid(`ipam: expected an object, got ${show(raw)}`);
  if (raw.type !== undefined && !ACCEPTED_TYPES.includes(raw.type as string)) {
    throw invalid(`ipam.type: ${show(raw.type)} is not supported: flatnet-cni serves IPAM in-process with host-local's semantics, so use "host-local" or leave "type" out`);
  }
  const dataDir = optionalString(raw, 'dataDir', 'ipam') ?? DEFAULT_DATA_DIR;
  if (!dataDir.startsWith('/')) throw invalid(`ipam.dataDir: ${show(dataDir)} must be an absolute path`);
  // The store lives in dataDir/<network name>; a name that climbs out would share another's addresses.
  if (!networkName || networkName.includes('/') || networkName === '.' || networkName === '..') {
    throw invalid(`name: ${show(networkName)} cannot name an IPAM directory under ${dataDir}`);
  }

  const sets: Resolved[][] = [];
  // host-local's legacy single range (top-level "subnet") becomes the first range set.
  if (raw.subnet !== undefined) sets.push([resolveRange(raw, 'ipam')]);
  if (raw.ranges !== undefined && raw.ranges !== null) {
    if (!Array.isArray(raw.ranges)) throw invalid(`ipam.ranges: expected an array of range sets, got ${show(raw.ranges)}`);
    raw.ranges.forEach((set, i) => sets.push(resolveRangeSet(set, `ipam.ranges[${i}]`)));
  }
  if (sets.length === 0) {
    throw invalid(`ipam.ranges: missing or empty: give at least one range set, e.g. "ranges": [[{"subnet": "10.244.1.0/24"}]]`);
  }
  checkOverlaps(sets.flat());
  return {
    rangeSets: sets.map((set) => set.map((r) => r.range)),
    routes: parseRoutes(raw.routes),
    dataDir,
  };
}
