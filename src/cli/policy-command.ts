// `flatnet policy explain FROM TO PORT[/PROTO]`: argument parsing and output only. The live objects are
// read from the lab's store and judged by the evaluator (src/policy/evaluate.ts), which also words it.
import { UsageError } from './usage.js';
import type { Values } from './main.js';
import type { EndpointSlice, Kind, Namespace, NetworkPolicy, Node, Pod, Service } from '../api/types.js';
import type { Store } from '../store/store.js';
import { POLICY_TABLE } from '../dataplane/policy/render.js';
import { listObjects } from '../api/apply.js';
import { compareTrace, expectationOnNode } from '../policy/trace-compare.js';
import { RulesetTracer, type TraceResult } from '../dataplane/nft/tracer.js';
import { afterDnat, evaluate, explainText, nodeAddresses, type Connection, type ConnProtocol, type PolicyWorld, type Verdict } from '../policy/evaluate.js';

export const POLICY_USAGE = 'policy explain FROM TO PORT[/tcp|udp|sctp] | icmp [--node NODE]   FROM/TO: NS/POD, POD (in -n NS) or an IP';

/** One end as given: a pod (namespace, name) or an address. */
export type EndArg = { pod: { namespace: string; name: string } } | { ip: string };

const isIP = (s: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));

/** "NS/NAME", "NAME" (in `namespace`), or an IP address. */
export function parseEnd(text: string, namespace: string): EndArg {
  if (isIP(text)) return { ip: text };
  const parts = text.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) throw new UsageError(`policy explain: "${text}": expected NS/POD, POD or an IP address`);
  return parts.length === 2 ? { pod: { namespace: parts[0], name: parts[1] } } : { pod: { namespace, name: parts[0] } };
}

/** "80", "80/tcp", "53/udp", "9/sctp", or "icmp" (no port). */
export function parsePort(text: string): { port: number; protocol: ConnProtocol } {
  if (text.toLowerCase() === 'icmp') return { port: 0, protocol: 'ICMP' };
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(text);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`policy explain: "${text}": expected PORT[/tcp|udp|sctp] (1-65535) or icmp`);
  return { port, protocol: (m[2] ?? 'tcp').toUpperCase() as ConnProtocol };
}

/** The addresses a pod end stands for: its podIPs (a host-network pod: its node's InternalIPs). */
export function endAddresses(end: EndArg, world: PolicyWorld): string[] {
  if ('ip' in end) return [end.ip];
  const { namespace, name } = end.pod;
  const pod = world.pods.find((p) => (p.metadata.namespace ?? 'default') === namespace && p.metadata.name === name);
  if (!pod) throw new Error(`pod ${namespace}/${name} not found`);
  const ips = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
  if (ips.length === 0 && pod.spec.hostNetwork) {
    const node = world.nodes.find((n) => n.metadata.name === pod.spec.nodeName);
    ips.push(...(node?.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address));
  }
  if (ips.length === 0) throw new Error(`pod ${namespace}/${name} has no address yet`);
  return ips;
}

/** A pair of addresses of one family, IPv4 first when both ends have both. */
export function pickPair(from: string[], to: string[]): [string, string] {
  const v6 = (a: string) => a.includes(':');
  for (const six of [false, true]) {
    const f = from.find((a) => v6(a) === six);
    const t = to.find((a) => v6(a) === six);
    if (f && t) return [f, t];
  }
  throw new Error(`no address family in common: ${from.join(', ')} and ${to.join(', ')}`);
}

export interface Explained { connection: Connection; verdict: Verdict; lines: string[] }

/**
 * The explanation of FROM → TO in `world`, pure: a connection to a Service address is judged per
 * backend after DNAT (as the dataplane judges it), with a line saying so.
 */
export function explain(world: PolicyWorld, services: Service[], slices: EndpointSlice[], args: string[], namespace: string)
  : { head: string[]; results: Explained[] } {
  if (args.length !== 3) throw new UsageError(`policy explain: expected FROM TO PORT[/PROTO], got ${args.length} arguments`);
  const from = parseEnd(args[0], namespace);
  const to = parseEnd(args[1], namespace);
  const { port, protocol } = parsePort(args[2]);
  const [src, dst] = pickPair(endAddresses(from, world), endAddresses(to, world));
  const conn: Connection = { from: src, to: dst, port, protocol };
  const nodeIPs = world.nodes.flatMap(nodeAddresses);
  const translated = afterDnat(services, slices, conn, nodeIPs);
  const head: string[] = [];
  if (translated.length !== 1 || translated[0] !== conn) {
    head.push(translated.length === 0
      ? `${dst} ${args[2]} is a Service address with no endpoints: the proxy refuses it before policy applies`
      : `${dst} ${args[2]} is a Service address: judged after DNAT, for each of its ${translated.length} backend(s)`);
  }
  const results = translated.map((c) => {
    const verdict = evaluate(world, c);
    return { connection: c, verdict, lines: explainText(world, c, verdict) };
  });
  return { head, results };
}

/** The objects explain judges, as the store holds them now. */
export async function readPolicyObjects(store: Store): Promise<{ world: PolicyWorld; services: Service[]; slices: EndpointSlice[] }> {
  const list = async <T>(kind: Kind) => (await listObjects(store, kind)) as unknown as T[];
  return {
    world: {
      namespaces: await list<Namespace>('Namespace'), pods: await list<Pod>('Pod'),
      policies: await list<NetworkPolicy>('NetworkPolicy'), nodes: await list<Node>('Node'),
    },
    services: await list<Service>('Service'), slices: await list<EndpointSlice>('EndpointSlice'),
  };
}

/**
 * `--node`: the packet tracer over `ruleset` (that node's live policy table; '' when it has none) for
 * each judged connection, and whether it agrees with the evaluator. Pure.
 */
export function traceOnNode(world: PolicyWorld, results: Explained[], node: string, ruleset: string): { agree: boolean; lines: string[] } {
  if (!world.nodes.some((n) => n.metadata.name === node)) throw new UsageError(`--node "${node}": no such node`);
  const tracer = new RulesetTracer(ruleset ? [ruleset] : []);
  const lines: string[] = ruleset ? [] : [`node ${node} has no table inet ${POLICY_TABLE}: it filters nothing`];
  let agree = true;
  for (const r of results) {
    const e = expectationOnNode(world, r.connection, r.verdict, node);
    let t: TraceResult;
    try { t = tracer.trace(e.packet); } catch (err) { lines.push(`node ${node}: the tracer cannot read it: ${(err as Error).message}`); agree = false; continue; }
    const c = compareTrace(e, t);
    agree &&= c.agree;
    lines.push(...c.lines);
  }
  return { agree, lines };
}

export async function policyCommand(rest: string[], v: Values): Promise<number> {
  if (rest[0] !== 'explain') throw new UsageError(`policy: expected "${POLICY_USAGE}"`);
  if (v.output !== undefined && v.output !== 'json') throw new UsageError(`-o "${v.output}": expected json`);
  const { labOf } = await import('./cluster-commands.js');
  const lab = labOf(v);
  lab.cluster(); // throws "lab X is not up ... run flatnet lab up"
  const store = lab.store();
  try {
    const { world, services, slices } = await readPolicyObjects(store);
    const { head, results } = explain(world, services, slices, rest.slice(1), v.namespace ?? 'default');
    let traced: { agree: boolean; lines: string[] } | undefined;
    if (v.node) {
      const netns = lab.plan().nodes.find((n) => n.name === v.node)?.netns;
      if (!netns) throw new UsageError(`--node "${v.node}": not a node of lab "${lab.name}"`);
      const { Netns } = await import('../kernel/netns.js');
      const { nftListTable } = await import('../kernel/nft.js');
      const ruleset = await nftListTable(new Netns(`/run/netns/${netns}`), 'inet', POLICY_TABLE);
      traced = traceOnNode(world, results, v.node, ruleset ?? '');
    }
    if (v.output === 'json') {
      console.log(JSON.stringify(results.map(({ connection, verdict }) => ({ connection, verdict })), null, 2));
    } else {
      console.log([...head, ...results.map((r) => r.lines.join('\n')), ...(traced ? [traced.lines.join('\n')] : [])].join('\n\n'));
    }
    // A disagreement between the dataplane and the evaluator is a failure a script can see.
    return traced && !traced.agree ? 1 : 0;
  } finally { await store.close(); }
}
