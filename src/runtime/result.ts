// Runtime-side result handling: version comparison and converting a plugin result between the
// layouts of the spec versions, because a cached result must reach plugins in the list's cniVersion.
import { CniCode, CniError } from '../cni/errors.js';
import type { CniResult } from '../cni/types.js';
import { compareVersions, LATEST_VERSION } from '../cni/version.js';

export { compareVersions, LATEST_VERSION };

/** Spec versions this runtime speaks, oldest first. */
export const RUNTIME_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

type Json = Record<string, unknown>;

export function isVersion(v: unknown): v is string {
  return typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v);
}

export const versionAtLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0;

/** The 0.1.0/0.2.0 results have ip4/ip6 objects instead of an ips list. */
const isLegacy = (v: string): boolean => compareVersions(v, '0.3.0') < 0;
/** 0.3.x and 0.4.0 carry a "version" field on every ips entry. */
const hasIpVersion = (v: string): boolean => !isLegacy(v) && compareVersions(v, '1.0.0') < 0;

const family = (cidrOrIp: string): '4' | '6' => (cidrOrIp.includes(':') ? '6' : '4');

/** Any result (object with cniVersion) in the current (1.x) layout, cniVersion unchanged. */
function toCurrentLayout(raw: Json, from: string): Json {
  if (isLegacy(from)) {
    const ips: Json[] = [];
    const routes: unknown[] = [];
    for (const key of ['ip4', 'ip6'] as const) {
      const block = raw[key] as Json | undefined;
      if (!block || typeof block !== 'object') continue;
      const ip: Json = { address: block.ip };
      if (block.gateway) ip.gateway = block.gateway;
      ips.push(ip);
      if (Array.isArray(block.routes)) routes.push(...block.routes);
    }
    const out: Json = { cniVersion: from };
    if (ips.length) out.ips = ips;
    if (routes.length) out.routes = routes;
    if (raw.dns) out.dns = raw.dns;
    return out;
  }
  const out: Json = { ...raw };
  if (Array.isArray(raw.ips)) {
    out.ips = (raw.ips as Json[]).map((ip) => { const { version: _v, ...rest } = ip; return rest; });
  }
  return out;
}

function fromCurrentLayout(cur: Json, to: string): Json {
  if (isLegacy(to)) {
    const ips = (Array.isArray(cur.ips) ? cur.ips : []) as Json[];
    const routes = (Array.isArray(cur.routes) ? cur.routes : []) as Json[];
    const out: Json = { cniVersion: to };
    for (const fam of ['4', '6'] as const) {
      const ip = ips.find((i) => typeof i.address === 'string' && family(i.address) === fam);
      if (!ip) continue;
      const block: Json = { ip: ip.address };
      if (ip.gateway) block.gateway = ip.gateway;
      const own = routes.filter((r) => typeof r.dst === 'string' && family(r.dst) === fam)
        .map((r) => (r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst }));
      if (own.length) block.routes = own;
      out[fam === '4' ? 'ip4' : 'ip6'] = block;
    }
    if (cur.dns) out.dns = cur.dns;
    return out;
  }
  const out: Json = { ...cur, cniVersion: to };
  if (hasIpVersion(to) && Array.isArray(cur.ips)) {
    out.ips = (cur.ips as Json[]).map((ip) => ({ version: family(String(ip.address ?? '')), ...ip }));
  }
  return out;
}

/**
 * Converts a result object to the layout of `to`. Throws code 1 when the result has no usable
 * cniVersion or when a version is unknown.
 */
export function convertResult(raw: unknown, to: string): Json {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, 'result is not a JSON object');
  }
  const obj = raw as Json;
  const from = isVersion(obj.cniVersion) ? obj.cniVersion : '0.1.0'; // libcni reads a missing version as 0.1.0
  for (const v of [from, to]) {
    if (!(RUNTIME_VERSIONS as readonly string[]).includes(v)) {
      throw new CniError(CniCode.IncompatibleVersion, `cannot convert result: unsupported CNI version "${v}"`);
    }
  }
  if (from === to) return { ...obj };
  return fromCurrentLayout(toCurrentLayout(obj, from), to);
}

/**
 * A result as the CniResult type describes it (1.x layout). A result of 0.3.0 or newer is returned
 * unchanged (an extra ips[].version is harmless); a legacy 0.1/0.2 result is converted to 1.0.0.
 */
export function asCniResult(raw: Json): CniResult {
  const v = isVersion(raw.cniVersion) ? raw.cniVersion : '0.1.0';
  if (isLegacy(v)) return convertResult(raw, '1.0.0') as unknown as CniResult;
  return raw as unknown as CniResult;
}
