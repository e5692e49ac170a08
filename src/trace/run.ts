// `flatnet trace` on a lab: resolve the two ends from the store, arm the tag on every node, send the
// packet from the source's namespace, read each node's trace events, routes and conntrack, and build
// the report. The trace tables are removed on every exit path, SIGINT included.
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type { ClusterLab } from '../lab/cluster.js';
import { podNetns } from '../lab/pods.js';
import { listObjects } from '../api/apply.js';
import type { EndpointSlice, Kind, Namespace, NetworkPolicy, Node, Pod, Service } from '../api/types.js';
import type { Store } from '../store/store.js';
import { arm, askKernelWhy, conntrackFact, disarm, routeFact, sendTagged, stopSenders, traceTableName, type TraceProtocol } from './kernel.js';
import { firstTaggedPacket } from './events.js';
import { NodeMonitor } from './monitor.js';
import { buildReport, lastNode, withKernelReason, type TraceEnd, type TraceReport, type TraceWorld } from './report.js';
import { reasonQuestion } from './reason.js';
import { indexWorld } from '../policy/evaluate.js';
import type { NodeObservation } from './hops.js';

export class TraceArgError extends Error {}

export interface TraceTarget { end: string; port?: number; protocol: TraceProtocol }

/** "TO[:PORT[/PROTO]]": PROTO tcp (the default), udp or icmp (no port). */
export function parseTarget(text: string): TraceTarget {
  const m = /^(.+?)(?::(\d{1,5}))?(?:\/(tcp|udp|icmp))?$/.exec(text);
  if (!m) throw new TraceArgError(`"${text}": expected TO[:PORT[/tcp|udp|icmp]]`);
  const protocol = (m[3] ?? 'tcp') as TraceProtocol;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new TraceArgError(`"${text}": port ${port} is out of range`);
  return { end: m[1], protocol, ...(port !== undefined ? { port } : {}) };
}

async function readObjects(store: Store): Promise<TraceWorld> {
  const list = async <T>(kind: Kind) => (await listObjects(store, kind)) as unknown as T[];
  return {
    world: { namespaces: await list<Namespace>('Namespace'), pods: await list<Pod>('Pod'), policies: await list<NetworkPolicy>('NetworkPolicy'), nodes: await list<Node>('Node') },
    services: await list<Service>('Service'), slices: await list<EndpointSlice>('EndpointSlice'),
  };
}

interface Resolved extends TraceEnd { netns?: string; defaultPort?: number }

/** A pod (NS/NAME or NAME in `namespace`), node/NAME, svc/NS/NAME, "external" (the lab's outside host), or an IP address. */
function resolveEnd(text: string, objects: TraceWorld, lab: ClusterLab, namespace: string): Resolved {
  const plan = lab.plan();
  const nodeNetns = (name: string) => plan.nodes.find((n) => n.name === name)?.netns;
  if (text.startsWith('node/')) {
    const node = plan.nodes.find((n) => n.name === text.slice(5));
    if (!node) throw new TraceArgError(`${text}: no such node in lab ${lab.name}`);
    return { label: text, address: node.ip, node: node.name, netns: node.netns };
  }
  if (text === 'external') return { label: 'external', address: plan.external.ip, netns: plan.external.netns };
  if (text.startsWith('svc/')) {
    const [ns, name] = text.slice(4).includes('/') ? text.slice(4).split('/', 2) : [namespace, text.slice(4)];
    const svc = objects.services.find((s) => (s.metadata.namespace ?? 'default') === ns && s.metadata.name === name);
    if (!svc?.spec.clusterIP || svc.spec.clusterIP === 'None') throw new TraceArgError(`${text}: no Service with a ClusterIP`);
    return { label: `svc/${ns}/${name}`, address: svc.spec.clusterIP, defaultPort: svc.spec.ports[0]?.port };
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(text)) {
    const pod = objects.world.pods.find((p) => p.status?.podIP === text && !p.spec.hostNetwork);
    return pod ? podEnd(pod, lab, nodeNetns) : { label: text, address: text };
  }
  const [ns, name] = text.includes('/') ? text.split('/', 2) : [namespace, text];
  const pod = objects.world.pods.find((p) => (p.metadata.namespace ?? 'default') === ns && p.metadata.name === name);
  if (!pod) throw new TraceArgError(`${text}: no pod ${name} in namespace ${ns}`);
  return podEnd(pod, lab, nodeNetns);
}

function podEnd(pod: Pod, lab: ClusterLab, nodeNetns: (n: string) => string | undefined): Resolved {
  const ref = `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
  if (!pod.status?.podIP) throw new TraceArgError(`pod ${ref} has no IP yet`);
  const netns = podNetns(lab.name, pod, nodeNetns);
  const port = pod.spec.containers.flatMap((c) => c.ports ?? [])[0]?.containerPort;
  return { label: ref, address: pod.status.podIP, node: pod.spec.nodeName, netns, ...(port ? { defaultPort: port } : {}) };
}

export interface TraceOptions { from: string; to: string; namespace: string; timeoutMs?: number }

export async function runTrace(lab: ClusterLab, o: TraceOptions): Promise<TraceReport> {
  const target = parseTarget(o.to);
  const store = lab.store();
  let objects: TraceWorld;
  try { objects = await readObjects(store); } finally { await store.close(); }
  const from = resolveEnd(o.from, objects, lab, o.namespace);
  const to = resolveEnd(target.end, objects, lab, o.namespace);
  if (!from.netns) throw new TraceArgError(`${o.from}: a trace starts from a pod or a node`);
  const port = target.protocol === 'icmp' ? 0 : target.port ?? to.defaultPort;
  if (port === undefined) throw new TraceArgError(`${o.to}: give a port (TO:PORT)`);
  const tag = randomInt(20000, 30000);
  const nodes = lab.plan().nodes.map((n) => ({ node: n.name, path: `/run/netns/${n.netns}` }));
  const table = traceTableName(tag);
  const monitors = nodes.map((n) => new NodeMonitor(n.node, n.path));
  // An interrupted trace still removes its tables, monitors and sender: synchronously, before the exit.
  const onSignal = () => {
    for (const n of nodes) spawnSync('nsenter', [`--net=${n.path}`, 'nft', '-f', '-'], { input: `add table ip ${table}\ndelete table ip ${table}\n` });
    for (const m of monitors) m.stop();
    stopSenders();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let probe;
  try {
    await Promise.all(monitors.map((m, i) => m.listening(nodes[i].path, `${table}-ready`, 15_000)));
    await Promise.all(nodes.map((n) => arm(n.path, target.protocol, tag)));
    probe = await sendTagged(`/run/netns/${from.netns}`, { host: to.address, port, tag, protocol: target.protocol, timeoutMs: o.timeoutMs ?? 2000 });
  } finally {
    await Promise.all(nodes.map((n) => disarm(n.path, tag).catch(() => undefined)));
    // The "delete table" event comes after every trace event of the table: all of them are read.
    await Promise.all(monitors.map((m) => m.waitLine(`delete table ip ${table}`, 10_000).catch(() => undefined)));
    for (const m of monitors) m.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const observations: NodeObservation[] = await Promise.all(nodes.map(async (n, i) => {
    const events = firstTaggedPacket(monitors[i].events, table);
    const packets = events.filter((e) => e.kind === 'packet');
    const dst = packets[packets.length - 1]?.packet?.daddr;
    const dropped = events.some((e) => e.verdict === 'drop');
    const obs: NodeObservation = { node: n.node, events };
    if (events.length && dst && !dropped) {
      const route = await routeFact(n.path, dst);
      if (route) obs.route = route;
    }
    if (events.length) {
      const ct = await conntrackFact(n.path, target.protocol, from.address, tag).catch(() => undefined);
      if (ct) obs.conntrack = ct;
    }
    return obs;
  }));
  const req = { from: { label: from.label, address: from.address, ...(from.node ? { node: from.node } : {}) }, to: { label: to.label, address: to.address, ...(to.node ? { node: to.node } : {}) }, port, protocol: target.protocol, tag };
  const report = buildReport(req, observations, probe, objects);
  return report.outcome === 'lost' ? explainLoss(lab, report, observations, objects) : report;
}

/** A lost packet: the kernel asked its route lookup again where the packet was last seen. */
async function explainLoss(lab: ClusterLab, report: TraceReport, observations: NodeObservation[], objects: TraceWorld): Promise<TraceReport> {
  const plan = lab.plan();
  const node = plan.nodes.find((n) => n.name === lastNode(report));
  const obs = observations.find((o) => o.node === node?.name);
  const q = obs ? reasonQuestion(obs, indexWorld(objects.world)) : undefined;
  if (!node || !q) return report;
  const k = await askKernelWhy(q.where === 'router' ? plan.router : node.netns, q, node.ip).catch(() => undefined);
  return k ? withKernelReason(report, k) : report;
}
