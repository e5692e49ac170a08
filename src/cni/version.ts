// Spec versions flatnet-cni speaks, and conversion of its result to the version a runtime asked for
// (containerd 1.6 and podman 4.3 reject a 1.1.0 result, so answering in kind matters).
import { CniCode, CniError } from './errors.js';
import type { CniIPConfig, CniInterface, CniResult, CniRoute } from './types.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

function parseVersion(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new CniError(CniCode.IncompatibleVersion, `invalid CNI version "${v}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Compares two dotted versions numerically, like a sort comparator: <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

export function requireVersionAtLeast(v: string, min: string, what: string): void {
  if (compareVersions(v, min) < 0) {
    throw new CniError(CniCode.IncompatibleVersion, `config version "${v}" does not allow ${what} (needs ${min} or later)`);
  }
}

const ipFamily = (address: string): '4' | '6' => (address.includes(':') ? '6' : '4');

/** Converts a result held in the newest shape into the JSON a `version` runtime expects. */
export function resultToVersion(result: CniResult, version: CniVersion): Record<string, unknown> {
  const v11 = version === '1.1.0';
  const pre1 = compareVersions(version, '1.0.0') < 0;
  const interfaces = result.interfaces?.map((i): CniInterface => {
    const o: CniInterface = { name: i.name };
    if (i.mac !== undefined) o.mac = i.mac;
    if (v11 && i.mtu !== undefined) o.mtu = i.mtu;
    if (i.sandbox !== undefined) o.sandbox = i.sandbox;
    if (v11 && i.socketPath !== undefined) o.socketPath = i.socketPath;
    if (v11 && i.pciID !== undefined) o.pciID = i.pciID;
    return o;
  });
  const ips = result.ips?.map((ip) => {
    const o: Record<string, unknown> = {};
    if (pre1) o.version = ipFamily(ip.address);
    if (ip.interface !== undefined) o.interface = ip.interface;
    o.address = ip.address;
    if (ip.gateway !== undefined) o.gateway = ip.gateway;
    return o;
  });
  const routes = result.routes?.map((r): CniRoute => {
    if (!v11) return r.gw !== undefined ? { dst: r.dst, gw: r.gw } : { dst: r.dst };
    return { ...r };
  });
  const out: Record<string, unknown> = { cniVersion: version };
  if (interfaces?.length) out.interfaces = interfaces;
  out.ips = ips ?? [];
  if (routes?.length) out.routes = routes;
  out.dns = result.dns ?? {};
  return out;
}

/** Reads a prevResult (in the config's version) into the newest shape. */
export function resultFromJson(raw: unknown, version: string, field = 'prevResult'): CniResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, `${field}: expected an object, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  if (!isSupportedVersion(version)) {
    throw new CniError(CniCode.IncompatibleVersion, `${field}: cannot read a result of version "${version}"`);
  }
  const list = (key: string): unknown[] => {
    const v = r[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new CniError(CniCode.DecodeFailure, `${field}.${key}: expected an array, got ${JSON.stringify(v)}`);
    return v;
  };
  const interfaces = list('interfaces').map((i, n) => {
    const o = i as Record<string, unknown>;
    if (typeof o?.name !== 'string') throw new CniError(CniCode.DecodeFailure, `${field}.interfaces[${n}].name: expected a string`);
    return o as unknown as CniInterface;
  });
  const ips = list('ips').map((i, n) => {
    const o = { ...(i as Record<string, unknown>) };
    if (typeof o.address !== 'string') throw new CniError(CniCode.DecodeFailure, `${field}.ips[${n}].address: expected a CIDR string`);
    delete o.version;
    return o as unknown as CniIPConfig;
  });
  const routes = list('routes').map((x) => x as CniRoute);
  const result: CniResult = { cniVersion: version, interfaces, ips, routes };
  if (r.dns && typeof r.dns === 'object') result.dns = r.dns as CniResult['dns'];
  return result;
}
