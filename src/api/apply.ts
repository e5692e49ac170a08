// `flatnet apply`, `delete` and `get` on the store, with kubectl's semantics and output lines.
//
// Apply and delete are all-or-nothing: they read the current state, check every object, then write
// every change in one store transaction whose conditions are the revisions they read (in guarded
// chunks, undone on failure, when it exceeds etcd's 128 ops: store/chunked.ts). A concurrent writer
// makes the transaction fail, and the whole read-check-write runs again on the new state.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NAMESPACE_PREFIX, isNamespaced, kindPrefix, objectKey } from './keys.js';
import { ApplyError, ServiceAllocations } from './service-apply.js';
import { NAMESPACE_NAME_LABEL, type Deployment, type EndpointSlice, type Kind, type KubeObject, type Namespace, type NetworkPolicy, type ObjectMeta, type Pod, type Service } from './types.js';
import { markTerminating } from './termination.js';
import { sliceService } from '../controller/endpoints.js';
import type { KV, Store, TxnOp } from '../store/store.js';
import { commitChunked } from '../store/chunked.js';

export { ApplyError };

export interface ApplyResult {
  kind: Kind;
  name: string;
  namespace?: string;
  action: 'created' | 'configured' | 'unchanged';
  /** As kubectl prints it: "pod/web created". */
  line: string;
}

export interface DeleteResult {
  kind: Kind;
  name: string;
  namespace?: string;
  action: 'deleted' | 'notFound';
  notFound: boolean;
  /** As kubectl prints it: 'pod "web" deleted', or its NotFound error. */
  line: string;
}

/** kubectl's resource names: "pod/web created", 'pods "web" not found'. */
const RESOURCE: Record<Kind, { singular: string; plural: string }> = {
  Node: { singular: 'node', plural: 'nodes' },
  Namespace: { singular: 'namespace', plural: 'namespaces' },
  Pod: { singular: 'pod', plural: 'pods' },
  Deployment: { singular: 'deployment.apps', plural: 'deployments.apps' },
  Service: { singular: 'service', plural: 'services' },
  EndpointSlice: { singular: 'endpointslice.discovery.k8s.io', plural: 'endpointslices.discovery.k8s.io' },
  NetworkPolicy: { singular: 'networkpolicy.networking.k8s.io', plural: 'networkpolicies.networking.k8s.io' },
};

/** kubectl's names of a kind: singular ("networkpolicy.networking.k8s.io") and plural. */
export const resourceNames = (kind: Kind): { singular: string; plural: string } => RESOURCE[kind];

/** The labels the API server stores: a Namespace always carries its own name (NAMESPACE_NAME_LABEL), whatever the manifest says. */
function serverLabels(o: KubeObject): Record<string, string> | undefined {
  const { labels } = o.metadata;
  return o.kind === 'Namespace' ? { ...labels, [NAMESPACE_NAME_LABEL]: o.metadata.name } : labels;
}

/** Namespaces the cluster itself needs, as Kubernetes refuses to delete them. */
const PROTECTED_NAMESPACES = ['default', 'kube-system'];

/** Transactions tried before giving up on a store that keeps changing under us. */
const ATTEMPTS = 8;

/** The writes an apply or delete would make (conditioned on the revisions it read), and what each object gets. */
export interface Plan<R> { ops: TxnOp[]; results: R[] }

/** Where an object lives: its namespace (defaulted), or undefined for cluster-scoped kinds. */
const namespaceOf = (o: KubeObject): string | undefined => (isNamespaced(o.kind) ? o.metadata.namespace ?? 'default' : undefined);
const keyOf = (o: KubeObject): string => objectKey(o.kind, o.metadata.name, namespaceOf(o));
/** 'Pod "demo/web"' or 'Namespace "demo"', for error messages. */
const describe = (o: KubeObject): string => `${o.kind} "${namespaceOf(o) !== undefined ? `${namespaceOf(o)}/` : ''}${o.metadata.name}"`;

function identity(o: KubeObject): { kind: Kind; name: string; namespace?: string } {
  const ns = namespaceOf(o);
  return ns === undefined ? { kind: o.kind, name: o.metadata.name } : { kind: o.kind, name: o.metadata.name, namespace: ns };
}

/** Runs plan-then-commit until the commit's conditions hold. */
async function commitPlan<R>(store: Store, what: string, plan: () => Promise<Plan<R>>): Promise<R[]> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const p = await plan();
    if (p.ops.length === 0 || (await commitChunked(store, inLandingOrder(p.ops)))) return p.results;
    await sleep(Math.random() * 10 * attempt); // spread retries, so two appliers racing do not collide again in step
  }
  throw new ApplyError(`${what}: the objects kept changing while it ran; gave up after ${ATTEMPTS} attempts`);
}

/**
 * A large write set lands in chunks (commitChunked): namespaces created or marked Terminating go first,
 * so nothing exists in a namespace that does not yet, and new content is refused at once; a namespace
 * removed outright goes last, after what lived in it.
 */
function inLandingOrder(ops: TxnOp[]): TxnOp[] {
  const rank = (o: TxnOp) => (!o.key.startsWith(NAMESPACE_PREFIX) ? 1 : o.op === 'delete' ? 2 : 0);
  return [...ops].sort((a, b) => rank(a) - rank(b));
}

export async function applyObjects(store: Store, objects: KubeObject[]): Promise<ApplyResult[]> {
  return commitPlan(store, 'apply', () => planApply(store, objects));
}

/** Plans an apply without writing: the API server (apiserver/admit.ts) commits it under its own conditions. */
export async function planApply(store: Store, objects: KubeObject[]): Promise<Plan<ApplyResult>> {
  const ops: TxnOp[] = [];
  const results: ApplyResult[] = [];
  const seen = new Set<string>();
  const namespacesApplied = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
  const namespaceState = new Map<string, 'absent' | 'active' | 'terminating'>();
  const stateOf = async (ns: string) => {
    if (!namespaceState.has(ns)) {
      const kv = await store.get(objectKey('Namespace', ns));
      namespaceState.set(ns, !kv ? 'absent' : (JSON.parse(kv.value) as Namespace).status?.phase === 'Terminating' ? 'terminating' : 'active');
    }
    return namespaceState.get(ns)!;
  };
  const now = timestamp();
  // Read only when the apply holds a Service: the addresses in use, for allocation.
  let allocations: ServiceAllocations | undefined;
  const services = async () => (allocations ??= await ServiceAllocations.load(store));

  for (const desired of objects) {
    if (desired.kind === 'Node' || desired.kind === 'EndpointSlice') throw new ApplyError(`${describe(desired)}: ${desired.kind === 'Node' ? 'nodes register themselves' : 'the controller keeps EndpointSlices'} and cannot be applied`);
    const key = keyOf(desired);
    if (seen.has(key)) throw new ApplyError(`${describe(desired)}: appears twice in this apply`);
    seen.add(key);

    const ns = namespaceOf(desired);
    const nsState = ns === undefined ? undefined : await stateOf(ns);
    if (nsState === 'absent' && !namespacesApplied.has(ns!)) {
      throw new ApplyError(`${describe(desired)}: namespace "${ns}" not found (create it first, or in the same apply)`);
    }

    const kv = await store.get(key);
    if (!kv && nsState === 'terminating') {
      throw new ApplyError(`${describe(desired)}: unable to create new content in namespace "${ns}" because it is being terminated`);
    }
    const line = (action: ApplyResult['action']) => `${RESOURCE[desired.kind].singular}/${desired.metadata.name} ${action}`;
    if (!kv) {
      let object = created(desired, now);
      if (object.kind === 'Service') {
        const planned = (await services()).create(object);
        object = planned.service;
        ops.push(...planned.ops);
      }
      ops.push({ op: 'create', key, value: JSON.stringify(object) });
      results.push({ ...identity(desired), action: 'created', line: line('created') });
      continue;
    }
    const current = JSON.parse(kv.value) as KubeObject;
    let next = updated(current, desired);
    if (current.kind === 'Service' && desired.kind === 'Service') {
      const planned = (await services()).update(current, desired);
      next = { ...(next as Service), spec: planned.spec };
      ops.push(...planned.ops);
    }
    if (canonical(next) === canonical(current)) {
      results.push({ ...identity(desired), action: 'unchanged', line: line('unchanged') });
    } else {
      ops.push({ op: 'update', key, value: JSON.stringify(next), expectModRevision: kv.modRevision });
      results.push({ ...identity(desired), action: 'configured', line: line('configured') });
    }
  }
  return { ops, results };
}

/** A new object as stored: the manifest's fields, plus what the server sets on creation. */
function created(desired: KubeObject, now: string): KubeObject {
  const { annotations } = desired.metadata;
  const labels = serverLabels(desired);
  const ns = namespaceOf(desired);
  const metadata: ObjectMeta = {
    name: desired.metadata.name,
    ...(ns !== undefined ? { namespace: ns } : {}),
    uid: randomUUID(),
    creationTimestamp: now,
    ...(labels !== undefined ? { labels } : {}),
    ...(annotations !== undefined ? { annotations } : {}),
  };
  switch (desired.kind) {
    case 'Namespace': return { apiVersion: 'v1', kind: 'Namespace', metadata, status: { phase: 'Active' } };
    case 'Pod': return { apiVersion: 'v1', kind: 'Pod', metadata, spec: desired.spec, status: { phase: 'Pending' } };
    case 'Deployment': return { apiVersion: 'apps/v1', kind: 'Deployment', metadata, spec: desired.spec };
    case 'Service': return { apiVersion: 'v1', kind: 'Service', metadata, spec: desired.spec };
    case 'NetworkPolicy': return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec: desired.spec };
    case 'Node': case 'EndpointSlice': throw new ApplyError(`${describe(desired)}: cannot be applied`);
  }
}

/** An existing object with the manifest applied: labels, annotations and (but for Pods) spec change. */
function updated(current: KubeObject, desired: KubeObject): KubeObject {
  const metadata: ObjectMeta = { ...current.metadata, labels: serverLabels(desired), annotations: desired.metadata.annotations };
  if (metadata.labels === undefined) delete metadata.labels;
  if (metadata.annotations === undefined) delete metadata.annotations;
  if (desired.kind === 'Pod') {
    const spec = (current as Pod).spec;
    // A nodeName the manifest leaves out is the scheduler's choice, not a change the manifest asks for.
    const comparable = desired.spec.nodeName === undefined ? { ...spec, nodeName: undefined } : spec;
    const field = firstDifference(comparable, desired.spec, 'spec');
    if (field !== undefined) {
      throw new ApplyError(`${describe(desired)}: spec is immutable (field ${field}); delete the pod and apply it again`);
    }
    return { ...(current as Pod), metadata };
  }
  if (desired.kind === 'Deployment') return { ...(current as Deployment), metadata, spec: desired.spec };
  if (desired.kind === 'NetworkPolicy') return { ...(current as NetworkPolicy), metadata, spec: desired.spec };
  return { ...current, metadata } as KubeObject;
}

export interface DeleteOptions {
  /** Seconds a pod gets to stop (kubectl --grace-period); its own terminationGracePeriodSeconds otherwise. */
  graceSeconds?: number;
}

export async function deleteObjects(store: Store, objects: KubeObject[], opts: DeleteOptions = {}): Promise<DeleteResult[]> {
  return commitPlan(store, 'delete', () => planDelete(store, objects, opts));
}

async function planDelete(store: Store, objects: KubeObject[], opts: DeleteOptions): Promise<Plan<DeleteResult>> {
  const deletes = new Map<string, TxnOp>();
  const now = Date.now();
  // A pod on a node is deleted gracefully: marked terminating, and its kubelet removes it (termination.ts).
  const removal = (kv: KV, o: KubeObject): TxnOp | undefined => {
    if (o.kind !== 'Pod') return { op: 'delete', key: kv.key, expectModRevision: kv.modRevision };
    const marked = markTerminating(o, now, opts.graceSeconds);
    if (!marked) return { op: 'delete', key: kv.key, expectModRevision: kv.modRevision };
    return marked === o ? undefined : { op: 'update', key: kv.key, value: JSON.stringify(marked), expectModRevision: kv.modRevision };
  };
  const remove = (kv: KV, o: KubeObject) => {
    const op = removal(kv, o);
    if (op) deletes.set(kv.key, op);
  };
  const named = new Set<string>();
  const results: DeleteResult[] = [];
  let allocations: ServiceAllocations | undefined;
  // Each namespace's slices are listed once, however many of its Services go.
  const slicesIn = new Map<string, Array<{ kv: KV; service: string | undefined }>>();
  // A deleted Service frees its ClusterIP and node ports, and its EndpointSlices go with it.
  const releaseService = async (service: Service) => {
    for (const op of (allocations ??= await ServiceAllocations.load(store)).release(service)) deletes.set(op.key, op);
    const ns = namespaceOf(service)!;
    if (!slicesIn.has(ns)) {
      slicesIn.set(ns, (await store.list(kindPrefix('EndpointSlice', ns))).items.map((kv) => ({ kv, service: sliceService(JSON.parse(kv.value) as EndpointSlice) })));
    }
    for (const { kv, service: owner } of slicesIn.get(ns)!) {
      if (owner === service.metadata.name) deletes.set(kv.key, { op: 'delete', key: kv.key, expectModRevision: kv.modRevision });
    }
  };
  /** Deletes what is under `prefix` (and `which` picks); returns the keys it took. */
  const deleteAll = async (prefix: string, which: (o: KubeObject) => boolean = () => true): Promise<string[]> => {
    const taken: string[] = [];
    for (const kv of (await store.list(prefix)).items) {
      const o = JSON.parse(kv.value) as KubeObject;
      if (deletes.has(kv.key) || !which(o)) continue;
      remove(kv, o);
      taken.push(kv.key);
      if (o.kind === 'Service') await releaseService(o);
    }
    return taken;
  };

  for (const o of objects) {
    if (o.kind === 'Namespace' && PROTECTED_NAMESPACES.includes(o.metadata.name)) {
      throw new ApplyError(`Error from server (Forbidden): namespaces "${o.metadata.name}" is forbidden: this namespace may not be deleted`);
    }
    const key = keyOf(o);
    const { singular, plural } = RESOURCE[o.kind];
    const deleted = { ...identity(o), action: 'deleted' as const, notFound: false, line: `${singular} "${o.metadata.name}" deleted` };
    const notFound = { ...identity(o), action: 'notFound' as const, notFound: true, line: `Error from server (NotFound): ${plural} "${o.metadata.name}" not found` };
    // Named twice: the first deletes it, so the second finds nothing, as with kubectl.
    const firstMention = !named.has(key);
    named.add(key);
    if (deletes.has(key)) { results.push(firstMention ? deleted : notFound); continue; }
    const kv = await store.get(key);
    if (!kv) { results.push(notFound); continue; }
    remove(kv, JSON.parse(kv.value) as KubeObject);
    results.push(deleted);

    if (o.kind === 'Service') await releaseService(JSON.parse(kv.value) as Service);
    if (o.kind === 'Namespace') {
      // What lives in a namespace goes with it, in the same transaction: nothing is left orphaned.
      await deleteAll(kindPrefix('Deployment', o.metadata.name));
      const pods = await deleteAll(kindPrefix('Pod', o.metadata.name));
      await deleteAll(kindPrefix('Service', o.metadata.name));
      await deleteAll(kindPrefix('EndpointSlice', o.metadata.name));
      await deleteAll(kindPrefix('NetworkPolicy', o.metadata.name));
      // Pods left terminating keep their namespace, Terminating, as Kubernetes does: nothing new may
      // be made in it, and the controller removes it once they are gone.
      if (pods.some((k) => deletes.get(k)?.op !== 'delete')) {
        const ns = JSON.parse(kv.value) as Namespace;
        if (ns.status?.phase === 'Terminating') deletes.delete(key);
        else {
          const marked: Namespace = { ...ns, metadata: { ...ns.metadata, deletionTimestamp: timestamp() }, status: { ...ns.status, phase: 'Terminating' } };
          deletes.set(key, { op: 'update', key, value: JSON.stringify(marked), expectModRevision: kv.modRevision });
        }
      }
    } else if (o.kind === 'Deployment') {
      const owner = JSON.parse(kv.value) as Deployment;
      await deleteAll(kindPrefix('Pod', namespaceOf(o)), (p) => ownedBy(p, owner));
    }
  }
  return { ops: [...deletes.values()], results };
}

/** Whether a pod was made by this Deployment (its ownerReferences name it, and its uid when both have one). */
function ownedBy(pod: KubeObject, owner: Deployment): boolean {
  return (pod.metadata.ownerReferences ?? []).some((r) => r.kind === 'Deployment' && r.name === owner.metadata.name
    && (r.uid === undefined || owner.metadata.uid === undefined || r.uid === owner.metadata.uid));
}

/** Every object of a kind, in one namespace or (namespace undefined) all, sorted by namespace then name. */
export async function listObjects(store: Store, kind: Kind, namespace?: string): Promise<KubeObject[]> {
  const { items } = await store.list(kindPrefix(kind, namespace));
  const objects = items.map((kv) => JSON.parse(kv.value) as KubeObject);
  const order = (o: KubeObject) => [o.metadata.namespace ?? '', o.metadata.name] as const;
  return objects.sort((a, b) => {
    const [an, aname] = order(a);
    const [bn, bname] = order(b);
    return an !== bn ? (an < bn ? -1 : 1) : aname < bname ? -1 : aname > bname ? 1 : 0;
  });
}

/** Kubernetes' timestamp format: RFC 3339 in UTC, whole seconds. */
const timestamp = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** JSON with sorted keys and no undefined: equal values give equal strings, whatever the key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (typeof val !== 'object' || val === null || Array.isArray(val)) return val;
    return Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** The path of the first field where two JSON values differ ("spec.containers[0].image"), or undefined. */
function firstDifference(a: unknown, b: unknown, path: string): string | undefined {
  if (canonical(a) === canonical(b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return path;
  }
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isRecord(a) && isRecord(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const d = firstDifference(a[k], b[k], `${path}.${k}`);
      if (d !== undefined) return d;
    }
  }
  return path;
}
