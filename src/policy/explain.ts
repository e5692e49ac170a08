// The evaluator's verdict as lines a person reads (`flatnet policy explain`): who each end is, and for
// each direction which policies isolate the pod and which rule allows, or "isolated by a, b; none
// allows" followed by every rule and the part of it that does not fit. Pure.
import type { LabelSelector, NetworkPolicyPeer, NetworkPolicyPort, Pod } from '../api/types.js';
import { formatRange, ipBlockRanges, normalizeAddress } from './addresses.js';
import { formatPortSpec, resolveNamedPort, rulePortsMatch } from './ports.js';
import {
  indexWorld, nodeAt, objectRef, podAt, rulePeersMatch,
  type Connection, type Direction, type PolicyIndex, type PolicyWorld,
} from './world.js';
import type { DirectionVerdict, Verdict } from './evaluate.js';

/** A label selector as kubectl prints one ("app=web,tier in (a,b)"); "{}" selects all. */
export function formatSelector(sel: LabelSelector | undefined): string {
  const terms = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const vals = `(${(e.values ?? []).join(',')})`;
    terms.push(e.operator === 'In' ? `${e.key} in ${vals}` : e.operator === 'NotIn' ? `${e.key} notin ${vals}`
      : e.operator === 'Exists' ? e.key : `!${e.key}`);
  }
  return terms.length ? terms.join(',') : '{}';
}

/** One peer in words: "ipBlock 10.0.0.0/8 except ...", "pods {pod=a} in namespace x", "all pods in namespaces {team=b}". */
export function formatPeer(peer: NetworkPolicyPeer, policyNamespace: string): string {
  if (peer.ipBlock) {
    const except = peer.ipBlock.except?.length ? ` except ${peer.ipBlock.except.join(', ')}` : '';
    return `ipBlock ${peer.ipBlock.cidr}${except} (${ipBlockRanges(peer).map(formatRange).join(', ') || 'nothing'})`;
  }
  const pods = peer.podSelector && formatSelector(peer.podSelector) !== '{}' ? `pods ${formatSelector(peer.podSelector)}` : 'all pods';
  const where = peer.namespaceSelector
    ? formatSelector(peer.namespaceSelector) === '{}' ? 'in all namespaces' : `in namespaces ${formatSelector(peer.namespaceSelector)}`
    : `in namespace ${policyNamespace}`;
  return `${pods} ${where}`;
}

interface AnyRule { peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }

function rulesOf(idx: PolicyIndex, policy: string, direction: Direction): AnyRule[] {
  const p = idx.world.policies.find((x) => objectRef(x) === policy);
  if (!p) return [];
  return direction === 'Ingress'
    ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
    : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
}

/**
 * A rule in words: "from pods pod=a in namespace x or ipBlock ...; ports tcp/80, tcp/http (8080 on x/b)";
 * a named port is shown with what it means on `destination`, when there is one.
 */
export function formatRule(rule: AnyRule, direction: Direction, policyNamespace: string, destination?: Pod): string {
  const peers = rule.peers?.length ? rule.peers.map((p) => formatPeer(p, policyNamespace)).join(' or ') : 'anyone';
  const named = (p: NetworkPolicyPort) => {
    if (!destination || typeof p.port !== 'string' || /^\d+$/.test(p.port)) return '';
    const n = resolveNamedPort(destination, p.port, p.protocol ?? 'TCP');
    return ` (${n === undefined ? 'none' : n} on ${objectRef(destination)})`;
  };
  const ports = rule.ports?.length ? rule.ports.map((p) => formatPortSpec(p) + named(p)).join(', ') : 'any port or protocol';
  return `${direction === 'Ingress' ? 'from' : 'to'} ${peers}; ports ${ports}`;
}

/** Who is at an address: a pod, a node (with its host-network pods), or nobody known. */
function describeEnd(idx: PolicyIndex, address: string): string {
  const pod = podAt(idx, address);
  if (pod) return `${objectRef(pod)} (${address})`;
  const node = nodeAt(idx, address);
  if (node) {
    const host = idx.hostNetworkByAddress.get(normalizeAddress(address) ?? address)?.map(objectRef) ?? [];
    return `node ${node.metadata.name} (${address}${host.length ? `; host network of ${host.join(', ')}` : ''})`;
  }
  return address;
}

function directionLines(idx: PolicyIndex, conn: Connection, direction: Direction, v: DirectionVerdict): string[] {
  const word = direction === 'Ingress' ? 'ingress' : 'egress';
  const address = direction === 'Ingress' ? conn.to : conn.from;
  if (!v.pod) {
    const why = nodeAt(idx, address) ? 'a node\'s address: policy isolates no node or host-network pod' : 'no pod has this address';
    return [`${word} of ${address}: not judged (${why})`];
  }
  const head = `${word} of ${v.pod}`;
  if (v.always) return [`${head}: allowed (${v.always})${v.isolatedBy.length ? `; isolated by ${v.isolatedBy.join(', ')}` : ''}`];
  if (v.isolatedBy.length === 0) return [`${head}: not isolated (no ${word} policy selects it); allowed`];
  if (v.allowedBy) {
    const ns = v.allowedBy.policy.split('/')[0];
    const rule = rulesOf(idx, v.allowedBy.policy, direction)[v.allowedBy.rule];
    return [`${head}: isolated by ${v.isolatedBy.join(', ')}; allowed by ${v.allowedBy.policy} ${word}[${v.allowedBy.rule}]`,
      `  ${v.allowedBy.policy} ${word}[${v.allowedBy.rule}]: ${rule ? formatRule(rule, direction, ns, podAt(idx, conn.to)) : '?'}`];
  }
  // Denied: every rule of every isolating policy, and which half of it does not fit.
  const lines = [`${head}: isolated by ${v.isolatedBy.join(', ')}; none allows`];
  const self = podAt(idx, address)!;
  const peerAddress = direction === 'Ingress' ? conn.from : conn.to;
  const peerPod = podAt(idx, peerAddress);
  const destination: Pod | undefined = direction === 'Ingress' ? self : peerPod;
  for (const policy of v.isolatedBy) {
    const ns = policy.split('/')[0];
    const rules = rulesOf(idx, policy, direction);
    if (rules.length === 0) lines.push(`  ${policy}: no ${word} rules (allows nothing)`);
    rules.forEach((r, i) => {
      const peerOk = rulePeersMatch(r.peers, ns, peerAddress, peerPod, idx.namespaces);
      const portOk = rulePortsMatch(r.ports, destination, conn.port, conn.protocol);
      const misses = [peerOk ? '' : `${direction === 'Ingress' ? 'source' : 'destination'} not a peer`,
        portOk ? '' : conn.protocol === 'ICMP' ? 'a rule with ports never allows ICMP' : 'port not listed'].filter(Boolean);
      lines.push(`  ${policy} ${word}[${i}]: ${formatRule(r, direction, ns, destination)} (${misses.join(', ')})`);
    });
  }
  return lines;
}

/** The verdict `v` on `conn` in `world`, as lines: a summary, then egress (source) and ingress (destination). */
export function explainText(world: PolicyWorld, conn: Connection, v: Verdict): string[] {
  const idx = indexWorld(world);
  const what = conn.protocol === 'ICMP' ? 'icmp' : `${conn.protocol.toLowerCase()}/${conn.port}`;
  return [
    `${describeEnd(idx, conn.from)} -> ${describeEnd(idx, conn.to)} ${what}: ${v.allowed ? 'allowed' : 'denied'}`,
    ...directionLines(idx, conn, 'Egress', v.egress),
    ...directionLines(idx, conn, 'Ingress', v.ingress),
  ];
}

