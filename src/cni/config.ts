// The flatnet-cni network configuration: the reference bridge plugin's keys where they mean the
// same, host-local's `ipam` keys, and the spec's runtime-supplied fields. Unknown keys are ignored.
import { isIP } from 'node:net';
import { CniCode, CniError } from './errors.js';
import { validateContainerId, validateIfname } from './env.js';
import { isSupportedVersion, resultFromJson, SUPPORTED_VERSIONS, type CniVersion } from './version.js';
import type { Attachment, CniResult } from './types.js';
import { parseIpamConf } from '../ipam/config.js';
import type { ParsedIpam } from '../ipam/types.js';

export const PLUGIN_TYPE = 'flatnet-cni';

export interface FlatnetConf {
  cniVersion: CniVersion;
  name: string;
  /** bridge: pods on a Linux bridge holding the gateway (the reference bridge plugin's shape); routed: each pod's veth is routed by the node, no bridge (one hop less, no bridge netfilter). */
  mode: 'bridge' | 'routed';
  bridge: string;
  mtu: number;
  hairpinMode: boolean;
  ipMasq: boolean;
  ipam: ParsedIpam;
  /** Addresses asked for through `args.cni.ips` or `runtimeConfig.ips` (CNI_ARGS IP= is added later). */
  requestedIps: string[];
  /** The pod interface's MAC from runtimeConfig.mac or args.cni.mac (CNI_ARGS MAC= is read later). */
  mac?: string;
  prevResult?: CniResult;
  validAttachments?: Attachment[];
}

const invalid = (msg: string) => new CniError(CniCode.InvalidConfig, msg);

/** Parses stdin as JSON; a decode failure is code 6. */
export function decodeJson(stdin: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, `network configuration is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, 'network configuration must be a JSON object');
  }
  return raw as Record<string, unknown>;
}

/** Reads only cniVersion: used first, so every later error can answer in the asked version. */
export function readVersion(raw: Record<string, unknown>): CniVersion {
  const v = raw.cniVersion;
  if (v === undefined) throw invalid('cniVersion is missing');
  if (!isSupportedVersion(v)) {
    throw new CniError(CniCode.IncompatibleVersion,
      `cniVersion ${JSON.stringify(v)} is not supported; flatnet-cni speaks ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v;
}

function optional<T>(raw: Record<string, unknown>, key: string, kind: 'string' | 'number' | 'boolean', fallback: T): T {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== kind) throw invalid(`${key}: expected a ${kind}, got ${JSON.stringify(v)}`);
  return v as T;
}

function requestedIpsFrom(raw: Record<string, unknown>): string[] {
  const out: string[] = [];
  const take = (list: unknown, field: string) => {
    if (list === undefined) return;
    if (!Array.isArray(list)) throw invalid(`${field}: expected an array of IP addresses, got ${JSON.stringify(list)}`);
    list.forEach((ip, i) => {
      // runtimeConfig.ips may carry a prefix length (the "ips" capability convention).
      const text = typeof ip === 'string' ? ip.replace(/\/\d+$/, '') : '';
      if (!isIP(text)) throw invalid(`${field}[${i}]: ${JSON.stringify(ip)} is not an IP address`);
      out.push(text);
    });
  };
  const args = raw.args as Record<string, any> | undefined;
  take(args?.cni?.ips, 'args.cni.ips');
  const rc = raw.runtimeConfig as Record<string, unknown> | undefined;
  take(rc?.ips, 'runtimeConfig.ips');
  return out;
}

/** A unicast MAC in ip's spelling (lower case, colons), or undefined when `text` is not one. */
export function normalizeMac(text: string): string | undefined {
  const m = /^([0-9a-f]{2})([:-][0-9a-f]{2}){5}$/i.exec(text.trim());
  if (!m) return undefined;
  const mac = text.trim().toLowerCase().replace(/-/g, ':');
  // A multicast (group bit) or all-zero address cannot be an interface's own.
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1 || mac === '00:00:00:00:00:00') return undefined;
  return mac;
}

/** runtimeConfig.mac wins over args.cni.mac, as in the reference bridge plugin. */
function macFrom(raw: Record<string, unknown>): string | undefined {
  const rc = (raw.runtimeConfig as Record<string, unknown> | undefined)?.mac;
  const args = (raw.args as Record<string, any> | undefined)?.cni?.mac;
  const [field, v] = rc !== undefined && rc !== '' ? ['runtimeConfig.mac', rc] : ['args.cni.mac', args];
  if (v === undefined || v === '') return undefined;
  const mac = typeof v === 'string' ? normalizeMac(v) : undefined;
  if (!mac) throw invalid(`${field}: ${JSON.stringify(v)} is not a unicast MAC address (like 0a:58:0a:f4:01:05)`);
  return mac;
}

function validAttachmentsFrom(raw: Record<string, unknown>): Attachment[] | undefined {
  const key = raw['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const list = raw[key];
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw invalid(`${key}: expected an array, got ${JSON.stringify(list)}`);
  return list.map((a, i) => {
    const o = a as Record<string, unknown>;
    if (typeof o?.containerID !== 'string' || typeof o?.ifname !== 'string') {
      throw invalid(`${key}[${i}]: expected {"containerID": string, "ifname": string}, got ${JSON.stringify(a)}`);
    }
    return { containerId: o.containerID, ifname: o.ifname };
  });
}

export function parseConf(raw: Record<string, unknown>): FlatnetConf {
  const cniVersion = readVersion(raw);
  const name = raw.name;
  if (typeof name !== 'string' || !name) throw invalid(`name: expected a non-empty string, got ${JSON.stringify(name)}`);
  validateContainerId(name, 'name', CniCode.InvalidConfig);
  if (raw.type !== undefined && raw.type !== PLUGIN_TYPE) {
    throw invalid(`type: this plugin is "${PLUGIN_TYPE}", got ${JSON.stringify(raw.type)}`);
  }
  const bridge = optional(raw, 'bridge', 'string', 'cni0');
  validateIfname(bridge, 'bridge', CniCode.InvalidConfig);
  const mtu = optional(raw, 'mtu', 'number', 1500);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(`mtu: ${mtu} is outside 68-65535`);
  if (raw.ipam === undefined) throw invalid('ipam is missing: flatnet-cni needs "ipam": {"ranges": [...]}');
  const mode = optional<string>(raw, 'mode', 'string', 'bridge');
  if (mode !== 'bridge' && mode !== 'routed') throw invalid(`mode: "${mode}" is not "bridge" or "routed"`);
  const conf: FlatnetConf = {
    cniVersion,
    name,
    mode: mode as FlatnetConf['mode'],
    bridge,
    mtu,
    hairpinMode: optional(raw, 'hairpinMode', 'boolean', false),
    ipMasq: optional(raw, 'ipMasq', 'boolean', false),
    ipam: parseIpamConf(raw.ipam, name),
    requestedIps: requestedIpsFrom(raw),
    mac: macFrom(raw),
    validAttachments: validAttachmentsFrom(raw),
  };
  if (conf.mode === 'routed' && conf.ipam.rangeSets.some((set) => set.some((r) => r.version === 6))) {
    throw invalid('mode: "routed" serves IPv4 ranges only; use mode "bridge" for IPv6');
  }
  if (conf.mode === 'routed' && conf.ipMasq) throw invalid('ipMasq: not available with mode "routed" (the node agent masquerades)');
  if (raw.prevResult !== undefined && raw.prevResult !== null) {
    conf.prevResult = resultFromJson(raw.prevResult, cniVersion);
  }
  return conf;
}
