// The cluster commands: lab life cycle, kubectl-style apply/delete/get/exec, check and the demo.
import { readFileSync } from 'node:fs';
import { UsageError } from './usage.js';
import type { Values } from './main.js';
import { ClusterLab, DEFAULT_LAB_ROOT } from '../lab/cluster.js';
import { defaultCluster, parseClusterFile, type LabCluster } from '../lab/cluster-file.js';
import { labStatus } from '../lab/status.js';
import { runSupervisor } from '../lab/supervise.js';
import { holdUnit, parseDuration } from '../lab/units.js';
import { livePid } from '../lab/processes.js';
import { parseManifests } from '../api/manifest.js';
import { applyObjects, deleteObjects, listObjects, resourceNames } from '../api/apply.js';
import { formatJson, formatTable, formatYaml } from '../api/format.js';
import type { Kind, KubeObject, Namespace, Pod } from '../api/types.js';
import { isTerminating } from '../api/termination.js';
import { gatherInputs } from '../check/inputs.js';
import { formatReport, runCheck } from '../check/run.js';
import { flatnetArgv } from '../lab/paths.js';
import { runClusterDemo } from '../lab/demo.js';

export const labOf = (v: Values): ClusterLab => new ClusterLab(v.lab ?? process.env.FLATNET_LAB ?? 'flatnet', v['state-dir'] ?? DEFAULT_LAB_ROOT);

/** The lab's store; a lab that is not up is said so instead of a socket error. */
function storeOf(lab: ClusterLab) {
  lab.cluster(); // throws "lab X is not up ... run flatnet lab up"
  return lab.store();
}

export function loadCluster(v: Values): LabCluster {
  const files = v.file ?? [];
  const cluster = files.length ? parseClusterFile(readFileSync(files[0], 'utf8'), files[0]) : defaultCluster();
  if (v.backend) {
    if (!['host-gw', 'vxlan', 'auto'].includes(v.backend)) throw new UsageError(`--backend "${v.backend}": expected host-gw, vxlan or auto`);
    cluster.backend = v.backend as LabCluster['backend'];
  }
  if (v.datastore) {
    if (!['etcd', 'kubernetes'].includes(v.datastore)) throw new UsageError(`--datastore "${v.datastore}": expected etcd or kubernetes`);
    cluster.datastore = v.datastore as LabCluster['datastore'];
  }
  return cluster;
}

export async function labCommand(rest: string[], v: Values): Promise<number> {
  const lab = labOf(v);
  const sub = rest.join(' ');
  if (sub === 'up') {
    const cluster = loadCluster(v);
    await lab.up(cluster);
    console.log(`lab ${lab.name} is up: ${cluster.nodes.length} nodes, backend ${cluster.backend}, etcd ${lab.etcdEndpoint}, kubeconfig ${lab.kubeconfigPath}`);
    return 0;
  }
  if (sub === 'down') {
    const { left } = await lab.down();
    console.log(left.length === 0 ? `lab ${lab.name} removed` : `lab ${lab.name} removed; kept ${lab.dir}: it holds files the lab did not make (${left.join(', ')})`);
    return 0;
  }
  if (sub === 'status') { console.log(await labStatus(lab)); return 0; }
  if (sub === 'kubeconfig') { console.log(lab.kubeconfig()); return 0; }
  if (rest[0] === 'node' && rest[1] === 'add' && rest[2]) {
    if (!v.segment) throw new UsageError('lab node add needs --segment SEG');
    await lab.addNode(rest[2], v.segment);
    console.log(`node ${rest[2]} added on segment ${v.segment}`);
    return 0;
  }
  if (rest[0] === 'node' && rest[1] === 'rm' && rest[2]) { await lab.removeNode(rest[2]); console.log(`node ${rest[2]} removed`); return 0; }
  if (sub === 'supervise') { await superviseCommand(lab); return 0; }
  if (rest[0] === 'hold') {
    if (rest.length !== 3) throw new UsageError('lab hold needs a unit and a duration: lab hold UNIT DURATION (e.g. lab hold agent-node-1 30s; 0 releases)');
    lab.cluster(); // a lab that is not up is said so
    let ms: number;
    try { ms = parseDuration(rest[2], 'duration'); } catch (err) { throw new UsageError((err as Error).message); }
    holdUnit(lab.dir, rest[1], Date.now() + ms);
    console.log(ms > 0 ? `${rest[1]}: no restart before ${new Date(Date.now() + ms).toISOString()}` : `${rest[1]}: hold released`);
    return 0;
  }
  throw new UsageError(`unknown lab command "${sub}"`);
}

/** The lab's supervisor daemon, until SIGTERM; `lab up` starts it and `lab down` stops it first. */
async function superviseCommand(lab: ClusterLab): Promise<void> {
  lab.cluster();
  const other = livePid(lab.pidFile('supervisor'));
  if (other !== undefined && other !== process.pid) throw new Error(`lab "${lab.name}" already has a supervisor (pid ${other})`);
  const log = (m: string) => console.log(`${new Date().toISOString()} supervisor ${m}`);
  const stopRequested = new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  await runSupervisor({ labDir: lab.dir, log, stopRequested });
}

function readManifests(v: Values) {
  const files = v.file ?? [];
  if (files.length === 0) throw new UsageError('-f FILE is required');
  return files.flatMap((f) => parseManifests(readFileSync(f === '-' ? 0 : f, 'utf8'), f === '-' ? '<stdin>' : f));
}

/** `apply -f` and `delete -f`: all objects of the files in one transaction, a line each as kubectl prints it. */
export async function manifestCommand(op: 'apply' | 'delete', v: Values): Promise<number> {
  const objects = readManifests(v);
  const grace = v['grace-period'];
  if (grace !== undefined && !/^\d+$/.test(grace)) throw new UsageError(`--grace-period "${grace}": expected whole seconds >= 0`);
  const graceSeconds = grace === undefined ? undefined : Number(grace);
  if (v.wait !== undefined && !['true', 'false'].includes(v.wait)) throw new UsageError(`--wait "${v.wait}": expected true or false`);
  const store = storeOf(labOf(v));
  try {
    const results = op === 'apply' ? await applyObjects(store, objects) : await deleteObjects(store, objects, { graceSeconds });
    let missing = 0;
    for (const r of results) {
      // kubectl reports a missing object on stderr and exits 1, after deleting the rest.
      if ('notFound' in r && r.notFound) { console.error(r.line); missing++; } else console.log(r.line);
    }
    // As kubectl does by default: return once the deleted pods are gone, not just marked terminating.
    if (op === 'delete' && v.wait !== 'false' && !(await terminationsDone(store, objects))) {
      console.error('error: timed out waiting for the pods (and their namespaces) to terminate');
      return 1;
    }
    return missing ? 1 : 0;
  } finally { await store.close(); }
}

/**
 * Waits for the pods a delete marked terminating (named, or in a deleted Namespace or Deployment) to
 * be removed, and for deleted Namespaces that waited for them.
 */
async function terminationsDone(store: ReturnType<typeof storeOf>, deleted: KubeObject[]): Promise<boolean> {
  const concerned = (p: Pod) => deleted.some((o) => (o.kind === 'Pod' && o.metadata.name === p.metadata.name && (o.metadata.namespace ?? 'default') === p.metadata.namespace)
    || (o.kind === 'Namespace' && o.metadata.name === p.metadata.namespace)
    || (o.kind === 'Deployment' && (o.metadata.namespace ?? 'default') === p.metadata.namespace && (p.metadata.ownerReferences ?? []).some((r) => r.kind === 'Deployment' && r.name === o.metadata.name)));
  let deadline: number | undefined;
  for (;;) {
    const left = (await listObjects(store, 'Pod')).map((o) => o as Pod).filter((p) => isTerminating(p) && concerned(p));
    const namespaces = (await listObjects(store, 'Namespace')).filter((n) => (n as Namespace).status?.phase === 'Terminating'
      && deleted.some((o) => o.kind === 'Namespace' && o.metadata.name === n.metadata.name));
    if (left.length === 0 && namespaces.length === 0) return true;
    // The longest grace period left, and a margin for the kubelet to tear down and remove.
    deadline ??= Math.max(Date.now(), ...left.map((p) => Date.parse(p.metadata.deletionTimestamp!))) + 15_000;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const KINDS: Record<string, Kind> = {
  node: 'Node', nodes: 'Node', no: 'Node',
  pod: 'Pod', pods: 'Pod', po: 'Pod',
  namespace: 'Namespace', namespaces: 'Namespace', ns: 'Namespace',
  deployment: 'Deployment', deployments: 'Deployment', deploy: 'Deployment',
  service: 'Service', services: 'Service', svc: 'Service',
  endpointslice: 'EndpointSlice', endpointslices: 'EndpointSlice',
  networkpolicy: 'NetworkPolicy', networkpolicies: 'NetworkPolicy', netpol: 'NetworkPolicy',
  'networkpolicy.networking.k8s.io': 'NetworkPolicy', 'networkpolicies.networking.k8s.io': 'NetworkPolicy',
};

/** The kind a `get` resource name means (kubectl's names, plurals and short names), or undefined. */
export const resourceKind = (name: string): Kind | undefined => (Object.prototype.hasOwnProperty.call(KINDS, name) ? KINDS[name] : undefined);

export async function getCommand(rest: string[], v: Values): Promise<number> {
  const kind = resourceKind(rest[0] ?? '');
  if (!kind) throw new UsageError(`get: unknown resource "${rest[0] ?? ''}" (nodes, pods, namespaces, deployments, services, endpointslices, networkpolicies)`);
  const name = rest[1];
  const out = v.output;
  if (out !== undefined && !['wide', 'json', 'yaml'].includes(out)) throw new UsageError(`-o "${out}": expected wide, json or yaml`);
  const store = storeOf(labOf(v));
  try {
    const all = !!v['all-namespaces'];
    let objects = await listObjects(store, kind, all ? undefined : (v.namespace ?? 'default'));
    if (name) {
      objects = objects.filter((o) => o.metadata.name === name);
      if (objects.length === 0) { console.error(`Error from server (NotFound): ${resourceNames(kind).plural} "${name}" not found`); return 1; }
    }
    if (out === 'json') console.log(formatJson(objects, { asList: !name }));
    else if (out === 'yaml') process.stdout.write(formatYaml(objects, { asList: !name }));
    else if (objects.length === 0) console.error(kind === 'Node' || kind === 'Namespace' || all ? 'No resources found' : `No resources found in ${v.namespace ?? 'default'} namespace.`);
    else console.log(formatTable(kind, objects, { wide: out === 'wide', allNamespaces: all }));
  } finally { await store.close(); }
  return 0;
}

export async function checkCommand(v: Values): Promise<number> {
  const lab = labOf(v);
  const plan = lab.plan();
  const store = storeOf(lab);
  try {
    const inputs = await gatherInputs(store, {
      name: lab.name,
      nodeNetns: (n) => plan.nodes.find((x) => x.name === n)?.netns,
      external: plan.external,
    }, { log: (line) => console.error(line) });
    const report = await runCheck(inputs, { flatnet: flatnetArgv() });
    console.log(v.output === 'json' ? JSON.stringify(report, null, 2) : formatReport(report, !!v.verbose));
    return report.pass ? 0 : 1;
  } finally { await store.close(); }
}

export async function demoCommand(v: Values): Promise<number> {
  return (await runClusterDemo({ keep: !!v.keep, root: v['state-dir'] ?? DEFAULT_LAB_ROOT, lab: v.lab })) ? 0 : 1;
}
