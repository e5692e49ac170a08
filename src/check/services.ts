// What `flatnet check` proves of the service network, pure: probes to ClusterIPs and NodePorts,
// answered by the Services' own backends (which must answer as `flatnet serve` does: with their pod
// name and the client address they saw), then judged per rule.
import type { ProbeResult, RuleResult } from './model.js';

export interface CheckServicePort { name: string; protocol: 'tcp' | 'udp'; port: number; nodePort?: number }
/** `port`: the backend's own port for this Service port (the slice's), what NetworkPolicy judges after DNAT. */
export interface CheckEndpoint { pod: string; ip: string; node?: string; port?: number }
export interface CheckService {
  id: string;
  clusterIP: string;
  type: 'ClusterIP' | 'NodePort';
  internalLocal: boolean;
  externalLocal: boolean;
  /** sessionAffinity ClientIP: a client's probes all land on one endpoint, instead of spreading. */
  sticky: boolean;
  ports: CheckServicePort[];
  /** Ready endpoints per port name. */
  endpoints: Map<string, CheckEndpoint[]>;
}

export interface ServiceCheckInputs {
  services: CheckService[];
  /** Pods on the pod network that can act as clients, in a stable order (each Service takes one per node). */
  clientPods: Array<{ label: string; node: string; netns: string; ip: string }>;
  nodes: Array<{ name: string; nodeIP: string; netns: string }>;
  /** Pods by "namespace/name": where an endpoint's own pod runs, for hairpin probes. */
  podNetns: Map<string, string>;
  external?: { netns: string; ip: string };
}

export type ServiceRuleId = 7 | 8 | 9 | 10;
export const SERVICE_RULE_TITLES: Record<ServiceRuleId, string> = {
  7: 'a ClusterIP answers from pods and nodes on every node, spread over every endpoint; pods keep their IP',
  8: 'a NodePort answers the external host on every node; externalTrafficPolicy Local keeps its IP',
  9: 'a pod reaching its own Service may land on itself (hairpin), and that works',
  10: 'a Service without endpoints is refused within 1 s',
};

export interface ServiceProbe {
  id: number;
  rule: ServiceRuleId;
  clientNetns: string;
  clientLabel: string;
  host: string;
  port: number;
  protocol: 'tcp' | 'udp';
  /** Probes judged together: e.g. all probes of one Service port from one client. */
  group: string;
  /** The address the backend must see; undefined = any. */
  expectClient?: string;
  /** The backends allowed to answer (and, with `spread`, all of which must answer across the group). */
  expectServers?: string[];
  spread?: boolean;
  /** Session affinity: every probe of the group must be answered by the same backend. */
  sticky?: boolean;
  /** For rule 10: the probe must fail fast with this error. */
  expectRefused?: boolean;
  /** Hairpin: at least one probe of the group must be answered by this pod. */
  expectSelf?: string;
}

/** Probes per (client, Service port): enough that every one of N endpoints answers at least once. */
export const spreadProbes = (endpoints: number): number => Math.max(8, endpoints * 10);

export function planServiceProbes(inp: ServiceCheckInputs, firstId: number): ServiceProbe[] {
  const probes: ServiceProbe[] = [];
  const add = (p: Omit<ServiceProbe, 'id'>, count = 1) => { for (let i = 0; i < count; i++) probes.push({ id: firstId + probes.length, ...p }); };
  for (const svc of inp.services) {
    for (const port of svc.ports) {
      const eps = svc.endpoints.get(port.name) ?? [];
      const what = `${svc.id} ${svc.clusterIP}:${port.port}/${port.protocol}`;
      if (eps.length === 0) {
        // Rule 10, from one pod and one node: refused (reset or ICMP unreachable), not left hanging.
        const client = inp.clientPods[0];
        if (client && !svc.internalLocal) add({ rule: 10, clientNetns: client.netns, clientLabel: client.label, host: svc.clusterIP, port: port.port, protocol: port.protocol, group: `${what} from ${client.label}`, expectRefused: true });
        const node = inp.nodes[0];
        if (node && !svc.internalLocal) add({ rule: 10, clientNetns: node.netns, clientLabel: `node ${node.name}`, host: svc.clusterIP, port: port.port, protocol: port.protocol, group: `${what} from node ${node.name}`, expectRefused: true });
        continue;
      }
      const servedFrom = (node: string) => (svc.internalLocal ? eps.filter((e) => e.node === node) : eps);
      // A client per node that is not itself an endpoint: landing on itself is hairpin (rule 9), masqueraded.
      const own = new Set(eps.map((e) => e.pod));
      const clients = inp.nodes.flatMap((n) => inp.clientPods.find((c) => c.node === n.name && !own.has(c.label)) ?? []);
      for (const c of clients) {
        const allowed = servedFrom(c.node);
        if (allowed.length === 0) continue; // internalTrafficPolicy Local with nothing here: dropped by design
        add({ rule: 7, clientNetns: c.netns, clientLabel: c.label, host: svc.clusterIP, port: port.port, protocol: port.protocol,
          group: `${what} from ${c.label}`, expectClient: c.ip, expectServers: allowed.map((e) => e.pod), spread: !svc.sticky, sticky: svc.sticky }, spreadProbes(allowed.length));
      }
      for (const n of inp.nodes) {
        const allowed = servedFrom(n.name);
        if (allowed.length === 0) continue;
        add({ rule: 7, clientNetns: n.netns, clientLabel: `node ${n.name}`, host: svc.clusterIP, port: port.port, protocol: port.protocol,
          group: `${what} from node ${n.name}`, expectServers: allowed.map((e) => e.pod), spread: !svc.sticky, sticky: svc.sticky }, spreadProbes(allowed.length));
      }
      // Hairpin: from one endpoint's own pod per node (TCP), with Cluster policy so it can land anywhere,
      // itself included.
      if (port.protocol === 'tcp' && !svc.internalLocal && !svc.sticky) {
        const perNode = new Map<string, CheckEndpoint>();
        for (const e of eps) if (inp.podNetns.has(e.pod) && !perNode.has(e.node ?? '')) perNode.set(e.node ?? '', e);
        for (const e of perNode.values()) {
          const netns = inp.podNetns.get(e.pod)!;
          add({ rule: 9, clientNetns: netns, clientLabel: e.pod, host: svc.clusterIP, port: port.port, protocol: port.protocol,
            group: `${what} from its endpoint ${e.pod}`, expectServers: eps.map((x) => x.pod), expectSelf: e.pod }, spreadProbes(eps.length));
        }
      }
      if (svc.type === 'NodePort' && port.nodePort !== undefined && inp.external) {
        for (const n of inp.nodes) {
          const local = eps.filter((e) => e.node === n.name);
          if (svc.externalLocal && local.length === 0) continue; // dropped by design on a node without a local endpoint
          const allowed = svc.externalLocal ? local : eps;
          add({ rule: 8, clientNetns: inp.external.netns, clientLabel: `external host ${inp.external.ip}`, host: n.nodeIP, port: port.nodePort, protocol: port.protocol,
            group: `${svc.id} NodePort ${n.nodeIP}:${port.nodePort}/${port.protocol}${svc.externalLocal ? ' (Local)' : ''}`,
            expectClient: svc.externalLocal ? inp.external.ip : undefined, expectServers: allowed.map((x) => x.pod),
            spread: !svc.externalLocal && !svc.sticky, sticky: svc.sticky }, spreadProbes(allowed.length));
        }
      }
    }
  }
  return probes;
}

/** Rule 10's limit: a refusal must come this fast (a dropped packet would take the client's timeout). */
export const REFUSE_WITHIN_MS = 1000;

export function judgeServices(probes: ServiceProbe[], results: ProbeResult[], haveServices: boolean): RuleResult[] {
  const byId = new Map(results.map((r) => [r.id, r]));
  return ([7, 8, 9, 10] as ServiceRuleId[]).map((rule) => {
    const rr: RuleResult = { rule: rule as RuleResult['rule'], title: SERVICE_RULE_TITLES[rule], status: 'pass', evidence: [], failures: [] };
    const mine = probes.filter((p) => p.rule === rule);
    if (mine.length === 0) {
      rr.status = 'skip';
      rr.evidence.push(!haveServices ? 'no Services' : rule === 8 ? 'no NodePort Service with endpoints (or no external host)' : rule === 9 ? 'no TCP Service with Cluster policy and endpoints on the pod network' : rule === 10 ? 'every Service has endpoints' : 'no Service with endpoints');
      return rr;
    }
    const groups = new Map<string, ServiceProbe[]>();
    for (const p of mine) groups.set(p.group, [...(groups.get(p.group) ?? []), p]);
    for (const [group, ps] of groups) {
      const rs = ps.map((p) => byId.get(p.id) ?? { id: p.id, ok: false, error: 'no result' });
      const spec = ps[0];
      if (spec.expectRefused) {
        const r = rs[0];
        if (r.ok) rr.failures.push(`${group}: answered by ${r.server}, expected a refusal`);
        else if (r.error !== 'ECONNREFUSED') rr.failures.push(`${group}: ${r.error}, expected ECONNREFUSED`);
        else if ((r.ms ?? Infinity) > REFUSE_WITHIN_MS) rr.failures.push(`${group}: refused after ${r.ms} ms, expected within ${REFUSE_WITHIN_MS} ms`);
        else rr.evidence.push(`${group}: refused in ${r.ms} ms`);
        continue;
      }
      const failed = rs.filter((r) => !r.ok);
      if (failed.length) { rr.failures.push(`${group}: ${failed.length}/${rs.length} probes failed (${failed[0].error})`); continue; }
      const clients = [...new Set(rs.map((r) => r.client))];
      if (spec.expectClient && clients.some((c) => c !== spec.expectClient)) {
        rr.failures.push(`${group}: the backend saw ${clients.join(', ')}, expected ${spec.expectClient}`);
        continue;
      }
      const servers = [...new Set(rs.map((r) => r.server ?? '?'))].sort();
      const strangers = servers.filter((s) => !(spec.expectServers ?? []).includes(s));
      if (strangers.length) { rr.failures.push(`${group}: answered by ${strangers.join(', ')}, not an endpoint for this client (${(spec.expectServers ?? []).join(', ')})`); continue; }
      const missing = (spec.expectServers ?? []).filter((s) => !servers.includes(s));
      if (spec.sticky && servers.length > 1) { rr.failures.push(`${group}: session affinity, yet answered by ${servers.join(', ')}`); continue; }
      if (spec.spread && missing.length) { rr.failures.push(`${group}: ${rs.length} probes never reached ${missing.join(', ')}`); continue; }
      if (spec.expectSelf && !servers.includes(spec.expectSelf)) { rr.failures.push(`${group}: ${rs.length} probes never landed on the pod itself`); continue; }
      const ms = rs.map((r) => r.ms ?? 0).sort((a, b) => a - b);
      rr.evidence.push(`${group}: ${rs.length}/${rs.length} answered by ${servers.join(', ')}${spec.sticky ? ' (session affinity)' : ''}; backend saw ${clients.join(', ')}; median ${ms[Math.floor(ms.length / 2)]} ms`);
    }
    const groupCount = groups.size;
    rr.evidence.unshift(`${groupCount - rr.failures.length}/${groupCount} client-service pairs passed (${mine.length} probes)`);
    if (rr.failures.length) rr.status = 'fail';
    return rr;
  });
}
