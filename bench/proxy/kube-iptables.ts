// The reference: kube-proxy's iptables-mode nat ruleset for the same Services, as `iptables-restore`
// input. Chain names, rule shapes, probabilities and comments follow kube-proxy (pkg/proxy/iptables):
// per Service port a KUBE-SERVICES rule to KUBE-SVC-<hash>, which marks off-cluster sources for
// masquerade and picks one KUBE-SEP-<hash> per endpoint with `-m statistic`; each SEP DNATs.
// Only the nat table: kube-proxy's filter-table rules (no-endpoint rejects, KUBE-FORWARD) are left out,
// as flatnet's counterparts are one map lookup that these Services never hit.
import { createHash } from 'node:crypto';
import type { EndpointSlice, Service } from '../../src/api/types.js';

/** Chain name -> its rules as `-A CHAIN ...` lines, in the order kube-proxy writes them. */
export interface NatRuleset { chains: Map<string, string[]> }

const MASQ_MARK = '0x4000';
/** The chains kube-proxy rewrites on every sync, partial or not. */
const HEADER_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];
/** kube-proxy's largeClusterEndpointsThreshold: above it, per-endpoint comments are dropped. */
const LARGE_CLUSTER_ENDPOINTS = 1000;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** kube-proxy's chain hash: base32 (RFC 4648) of sha256, first 16 characters. */
export function chainHash(s: string): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of createHash('sha256').update(s).digest()) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 16) { out += BASE32[(value >>> (bits - 5)) & 31]; bits -= 5; }
    if (out.length === 16) break;
  }
  return out;
}

interface Endpoint { ip: string; port: number }

function endpointsOf(svc: Service, portName: string, slices: EndpointSlice[]): Endpoint[] {
  const out: Endpoint[] = [];
  for (const s of slices) {
    if (s.metadata.labels?.['kubernetes.io/service-name'] !== svc.metadata.name || s.metadata.namespace !== svc.metadata.namespace) continue;
    const port = s.ports.find((p) => p.name === portName);
    if (!port) continue;
    for (const e of s.endpoints) if (e.conditions.ready) out.push(...e.addresses.map((ip) => ({ ip, port: port.port })));
  }
  return out;
}

/** Slices by "namespace/service-name", so rendering 10,000 Services is not quadratic. */
function slicesByService(slices: EndpointSlice[]): Map<string, EndpointSlice[]> {
  const out = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const id = `${s.metadata.namespace}/${s.metadata.labels?.['kubernetes.io/service-name']}`;
    if (!out.has(id)) out.set(id, []);
    out.get(id)!.push(s);
  }
  return out;
}

export function renderKubeProxyNat(services: Service[], slices: EndpointSlice[], clusterCIDR: string): NatRuleset {
  const bySvc = slicesByService(slices);
  const total = slices.reduce((n, s) => n + s.endpoints.length, 0);
  const comment = (text: string, always = false) => (always || total <= LARGE_CLUSTER_ENDPOINTS ? ` -m comment --comment "${text}"` : '');
  const chains = new Map<string, string[]>(HEADER_CHAINS.map((c) => [c, []]));
  const rules = (chain: string) => chains.get(chain) ?? chains.set(chain, []).get(chain)!;
  rules('KUBE-POSTROUTING').push(
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`,
    `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
  );
  rules('KUBE-MARK-MASQ').push(`-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`);

  for (const svc of services) {
    const cip = svc.spec.clusterIP;
    if (!cip || cip === 'None') continue;
    for (const port of svc.spec.ports) {
      const name = `${svc.metadata.namespace}/${svc.metadata.name}:${port.name ?? ''}`;
      const proto = port.protocol.toLowerCase();
      const eps = endpointsOf(svc, port.name ?? '', bySvc.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? []);
      if (eps.length === 0) continue; // kube-proxy rejects these in the filter table, left out here
      const svcChain = `KUBE-SVC-${chainHash(name + proto)}`;
      const match = `-d ${cip}/32 -p ${proto}${comment(`${name} cluster IP`, true)} -m ${proto} --dport ${port.port}`;
      rules('KUBE-SERVICES').push(`-A KUBE-SERVICES ${match} -j ${svcChain}`);
      rules(svcChain).push(`-A ${svcChain} ! -s ${clusterCIDR} ${match} -j KUBE-MARK-MASQ`);
      eps.forEach((ep, i) => {
        const sepChain = `KUBE-SEP-${chainHash(`${name}${proto}${ep.ip}:${ep.port}`)}`;
        // Endpoint i of n is taken with probability 1/(n-i) among those left: equal odds overall.
        const statistic = i < eps.length - 1 ? ` -m statistic --mode random --probability ${(1 / (eps.length - i)).toFixed(10)}` : '';
        rules(svcChain).push(`-A ${svcChain}${comment(`${name} -> ${ep.ip}:${ep.port}`)}${statistic} -j ${sepChain}`);
        rules(sepChain).push(
          `-A ${sepChain} -s ${ep.ip}/32${comment(name)} -j KUBE-MARK-MASQ`,
          `-A ${sepChain} -p ${proto}${comment(name)} -m ${proto} -j DNAT --to-destination ${ep.ip}:${ep.port}`,
        );
      });
    }
  }
  rules('KUBE-SERVICES').push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  return { chains };
}

/** The built-in chains' jumps, which kube-proxy adds once with `iptables -I` (here: in the first restore). */
const BUILTIN = [
  ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
];

const same = (a: string[] | undefined, b: string[] | undefined) => a !== undefined && b !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);

/**
 * `iptables-restore --noflush` input taking the table from `prev` (undefined: empty) to `next`, the way
 * kube-proxy writes it: every chain it writes is declared (which flushes it) and refilled, and chains
 * that went are declared and deleted (-X). `partial` is kube-proxy's MinimizeIPTablesRestore (default
 * since 1.27): only the header chains plus the chains of Services that changed; otherwise every chain.
 */
export function restoreInput(next: NatRuleset, prev: NatRuleset | undefined, partial: boolean): string {
  const written = [...next.chains.keys()].filter((c) => !partial || !prev || HEADER_CHAINS.includes(c) || !same(prev.chains.get(c), next.chains.get(c)));
  const stale = prev ? [...prev.chains.keys()].filter((c) => !next.chains.has(c)) : [];
  const lines = ['*nat'];
  if (!prev) lines.push(...BUILTIN.filter((l) => l.startsWith(':')));
  lines.push(...written.map((c) => `:${c} - [0:0]`), ...stale.map((c) => `:${c} - [0:0]`));
  if (!prev) lines.push(...BUILTIN.filter((l) => l.startsWith('-A')));
  for (const c of written) lines.push(...next.chains.get(c)!);
  lines.push(...stale.map((c) => `-X ${c}`), 'COMMIT', '');
  return lines.join('\n');
}

/** Rules the kernel should hold once `next` is restored on an empty table (built-in jumps included). */
export function ruleCount(r: NatRuleset): number {
  let n = BUILTIN.filter((l) => l.startsWith('-A')).length;
  for (const rules of r.chains.values()) n += rules.length;
  return n;
}
