// The proxy table's fixed part: its maps and sets (declared empty) and its chains, written in the
// canonical form `nft list table` prints, so the agent can tell at start whether the kernel already
// holds it (then only elements are compared) or it must be rebuilt. Pure.
//
// Hooks (one table of our own, `ip flatnet-proxy`):
//   nat prerouting/output at dstnat   ClusterIP and NodePort DNAT (pods, the node itself, outside)
//   nat postrouting at srcnat         session-affinity memory, then masquerade where replies would bypass us
//   filter input/forward/output       a new connection to a Service without endpoints is refused at once
// The table promises other tables one mark bit, MASQ_MARK: "masquerade this connection".

import type { NftSetLayout } from '../../kernel/nft-elements.js';

export const PROXY_TABLE = 'flatnet-proxy';
export const MASQ_MARK = '0x00004000';

const SERVICE_KEY = 'ip daddr . meta l4proto . th dport';
const NODEPORT_KEY = 'meta l4proto . th dport';

export interface SkeletonOptions {
  /** pick-N and np-pick-N chains exist for every N from 1 to this (at least 1). */
  maxCount: number;
  /** One aff-T chain per timeout, in seconds. */
  affinityTimeouts: number[];
  /** Pod addresses: a ClusterIP connection from anywhere else is masqueraded (as kube-proxy does). */
  clusterCIDR: string;
  serviceCIDR: string;
}

const SERVICE_FIELDS = ['ipv4_addr', 'inet_proto', 'inet_service'] as const;
const NODEPORT_FIELDS = ['inet_proto', 'inet_service'] as const;
const ENDPOINT = ['ipv4_addr', 'inet_service'] as const;

/** The byte layout of each map and set declared below, to decode their elements as nft would print them. */
export const PROXY_LAYOUTS: Record<string, NftSetLayout> = {
  services: { key: [...SERVICE_FIELDS], data: 'verdict' },
  endpoints: { key: [...SERVICE_FIELDS, 'integer32'], data: [...ENDPOINT] },
  'no-endpoints': { key: [...SERVICE_FIELDS], data: 'verdict' },
  'affinity-services': { key: [...SERVICE_FIELDS] },
  'affinity-timeouts': { key: [...SERVICE_FIELDS], data: 'verdict' },
  affinity: { key: ['ipv4_addr', ...SERVICE_FIELDS], data: [...ENDPOINT] },
  nodeports: { key: [...NODEPORT_FIELDS], data: 'verdict' },
  'nodeport-endpoints': { key: [...NODEPORT_FIELDS, 'integer32'], data: [...ENDPOINT] },
  'nodeport-no-endpoints': { key: [...NODEPORT_FIELDS], data: 'verdict' },
  'nodeport-masq': { key: [...NODEPORT_FIELDS] },
  hairpin: { key: ['ipv4_addr', 'ipv4_addr'] },
};

/** nft's own spelling of a timeout: 3h, 10800s → "3h"; 90 → "1m30s". */
export function nftDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return `${d ? `${d}d` : ''}${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}` || '0s';
}

function chain(name: string, lines: string[]): string[] {
  return [`\tchain ${name} {`, ...lines.map((l) => `\t\t${l}`), '\t}'];
}

function map(name: string, decl: string, extra: string[] = []): string[] {
  return [`\tmap ${name} {`, `\t\t${decl}`, ...extra.map((l) => `\t\t${l}`), '\t}'];
}

function set(name: string, decl: string): string[] {
  return [`\tset ${name} {`, `\t\t${decl}`, '\t}'];
}

/**
 * The table as `nft -f` input (`form` "input"), or as `nft list table` prints it back ("listing"):
 * they differ in one rule shape only.
 */
export function renderSkeleton(o: SkeletonOptions, form: 'input' | 'listing' = 'input'): string {
  const counts = Array.from({ length: Math.max(1, o.maxCount) }, (_, i) => i + 1);
  const timeouts = [...new Set(o.affinityTimeouts)].sort((a, b) => a - b);
  // nft prints a blank line between blocks; so does this, so the listing compares equal.
  const blocks: string[][] = [
    map('services', `typeof ${SERVICE_KEY} : verdict`),
    map('endpoints', `typeof ${SERVICE_KEY} . numgen random mod 2 : ip daddr . th dport`),
    map('no-endpoints', `typeof ${SERVICE_KEY} : verdict`),
    set('affinity-services', `typeof ${SERVICE_KEY}`),
    map('affinity-timeouts', 'type ipv4_addr . inet_proto . inet_service : verdict'),
    // Filled by the packet path: (client, ClusterIP, protocol, port) → the endpoint it was sent to.
    map('affinity', 'type ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service', ['size 65535', 'flags dynamic,timeout', 'timeout 3h']),
    map('nodeports', `typeof ${NODEPORT_KEY} : verdict`),
    map('nodeport-endpoints', `typeof ${NODEPORT_KEY} . numgen random mod 2 : ip daddr . th dport`),
    map('nodeport-no-endpoints', `typeof ${NODEPORT_KEY} : verdict`),
    set('nodeport-masq', `typeof ${NODEPORT_KEY}`),
    set('hairpin', 'typeof ip saddr . ip daddr'),
    chain('nat-prerouting', ['type nat hook prerouting priority dstnat; policy accept;', 'jump service-dnat']),
    // nft 1.0.6 knows "dstnat" for prerouting only; -100 is the same priority.
    chain('nat-output', ['type nat hook output priority -100; policy accept;', 'jump service-dnat']),
    chain('service-dnat', [
      `${SERVICE_KEY} vmap @services`,
      `fib daddr type local ${NODEPORT_KEY} @nodeport-masq meta mark set meta mark | ${MASQ_MARK}`,
      `fib daddr type local ${NODEPORT_KEY} vmap @nodeports`,
    ]),
    ...counts.flatMap((n) => [
      chain(`pick-${n}`, [
        `${SERVICE_KEY} @affinity-services dnat ip to ip saddr . ${SERVICE_KEY} map @affinity`,
        `dnat ip to ${SERVICE_KEY} . numgen random mod ${n} map @endpoints`,
      ]),
      chain(`np-pick-${n}`, [
        `${SERVICE_KEY} @affinity-services dnat ip to ip saddr . ${SERVICE_KEY} map @affinity`,
        `dnat ip to ${NODEPORT_KEY} . numgen random mod ${n} map @nodeport-endpoints`,
      ]),
    ]),
    chain('nat-postrouting', [
      'type nat hook postrouting priority srcnat; policy accept;',
      // Remembered before masquerade ends the chain; `jump` returns here.
      'ct status dnat meta l4proto tcp ct original ip daddr . meta l4proto . ct original proto-dst vmap @affinity-timeouts',
      'ct status dnat meta l4proto udp ct original ip daddr . meta l4proto . ct original proto-dst vmap @affinity-timeouts',
      `meta mark & ${MASQ_MARK} == ${MASQ_MARK} masquerade`,
      'ct status dnat ip saddr . ip daddr @hairpin masquerade',
      `ct status dnat ct original ip daddr ${o.serviceCIDR} ip saddr != ${o.clusterCIDR} masquerade`,
    ]),
    // `ct original proto-dst` has a type only once the protocol is known, so the input names it; nft
    // lists the rule with the match folded into `tcp dport`, and cannot read that form back.
    ...timeouts.map((t) => chain(`aff-${t}`, ['tcp', 'udp'].map((p) => (form === 'input'
      ? `meta l4proto ${p} update @affinity { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout ${nftDuration(t)} : ip daddr . th dport }`
      : `update @affinity { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout ${nftDuration(t)} : ip daddr . ${p} dport }`)))),
    chain('filter-input', ['type filter hook input priority filter - 10; policy accept;', 'ct state new jump check-endpoints']),
    chain('filter-forward', ['type filter hook forward priority filter - 10; policy accept;', 'ct state new jump check-endpoints']),
    chain('filter-output', ['type filter hook output priority filter - 10; policy accept;', 'ct state new jump check-endpoints']),
    chain('check-endpoints', [
      `${SERVICE_KEY} vmap @no-endpoints`,
      `fib daddr type local ${NODEPORT_KEY} vmap @nodeport-no-endpoints`,
    ]),
    // TCP gets a reset, UDP an ICMP port unreachable: the client fails at once instead of timing out.
    chain('refuse', ['reject with tcp reset', 'reject']),
  ];
  const lines = [`table ip ${PROXY_TABLE} {`, ...blocks.flatMap((b, i) => (i === 0 ? b : ['', ...b])), '}'];
  return lines.join('\n') + '\n';
}
