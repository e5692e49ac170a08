// Admission and storage of one object: flatnet's appliable kinds (Namespace, Pod, Deployment, Service,
// NetworkPolicy) through `flatnet apply`'s own code (its validation, its Service address allocation, its
// graceful delete), so the API and the CLI can never disagree; nodes, EndpointSlices, status writes and
// the extra kinds (generic.ts) after a structural check. Errors are the API's Status (thrown as Rejected).
import type { KV, Store } from '../store/store.js';
import type { Kind, KubeObject, Namespace } from '../api/types.js';
import { objectKey } from '../api/keys.js';
import { ApplyError, deleteObjects, planApply } from '../api/apply.js';
import { ManifestError, parseManifests } from '../api/manifest.js';
import { commitChunked } from '../store/chunked.js';
import { RESOURCES, isFlatnetKind, keyOf, prefixOf, type Resource } from './resources.js';
import { Rejected, alreadyExists, forbidden, fromKV, invalid, notFound, qualified, type Cause } from './responses.js';

export { Rejected };
import { checkStructure, createGeneric, deleteGeneric, updateGeneric } from './generic.js';

export interface Admitted { object: KubeObject }

type Obj = Record<string, unknown>;

/** The kinds `flatnet apply` takes (nodes register themselves; the controller keeps EndpointSlices). */
const APPLIED: readonly string[] = ['Namespace', 'Pod', 'Deployment', 'Service', 'NetworkPolicy'];
const viaApply = (r: Resource): r is Resource & { kind: Kind } => isFlatnetKind(r.kind) && APPLIED.includes(r.kind);
const ATTEMPTS = 8;

const nameOf = (o: Obj): string => String((o.metadata as Obj | undefined)?.name ?? '');
const namespaceOf = (o: Obj): string | undefined => (o.metadata as Obj | undefined)?.namespace as string | undefined;

/** kube-apiserver's generateName: the prefix and five random characters from its alphabet. */
function withGeneratedName(o: Obj): Obj {
  const { generateName, ...meta } = (o.metadata ?? {}) as Obj;
  if (meta.name || typeof generateName !== 'string') return { ...o, metadata: meta };
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const suffix = Array.from({ length: 5 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
  // The prefix is not kept: flatnet's objects have no generateName (`flatnet apply` refuses it).
  return { ...o, metadata: { ...meta, name: `${generateName}${suffix}` } };
}

/** The namespace must exist, and not be terminating, for anything to be created in it. */
async function checkNamespace(store: Store, r: Resource, name: string, namespace: string | undefined): Promise<void> {
  if (!r.namespaced || namespace === undefined) return;
  const kv = await store.get(objectKey('Namespace', namespace));
  const namespaces = RESOURCES.find((x) => x.kind === 'Namespace')!;
  if (!kv) throw new Rejected(notFound(namespaces, namespace));
  if ((JSON.parse(kv.value) as Namespace).status?.phase === 'Terminating') {
    throw new Rejected(forbidden(`${qualified(r)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`));
  }
}

/** `flatnet apply`'s validation of one object, its errors as a 422 Invalid naming the field. */
export function validateAsApply(r: Resource, o: Obj): KubeObject {
  try {
    const [parsed] = parseManifests(JSON.stringify(o), 'request');
    return parsed;
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    const cause: Cause = { reason: 'FieldValueInvalid', message: err.problem ?? err.message, ...(err.field ? { field: err.field } : {}) };
    throw new Rejected(invalid(r, nameOf(o), [cause]));
  }
}

/** apply.ts's refusals (an immutable field, an address in use) as 422 Invalid, its Forbidden as 403. */
function applyRefusal(r: Resource, name: string, err: ApplyError): Rejected {
  const text = err.message.replace(/^Error from server \(Forbidden\): /, '');
  if (text !== err.message) return new Rejected(forbidden(text));
  const problem = text.replace(/^\w+ "[^"]*": /, '');
  const field = /^([\w.[\]]+): /.exec(problem)?.[1] ?? /\(field ([\w.[\]]+)\)/.exec(problem)?.[1];
  return new Rejected(invalid(r, name, [{ reason: 'FieldValueInvalid', message: problem, ...(field ? { field } : {}) }]));
}

/** POST: the object as stored (uid, creationTimestamp, resourceVersion set), or as it would be with dryRun. */
export async function admitCreate(store: Store, r: Resource, body: Obj, dryRun: boolean): Promise<Admitted> {
  const o = withGeneratedName(body);
  const name = nameOf(o);
  const namespace = r.namespaced ? namespaceOf(o) : undefined;
  if (!viaApply(r)) {
    checkStructure(r, o, name);
    await checkNamespace(store, r, name, namespace);
    return { object: await createGeneric(store, r, o, dryRun) };
  }
  const parsed = validateAsApply(r, o);
  await checkNamespace(store, r, name, namespace);
  const key = keyOf(r, name, namespace);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let plan;
    try { plan = await planApply(store, [parsed]); } catch (err) {
      if (err instanceof ApplyError) throw applyRefusal(r, name, err);
      throw err;
    }
    if (plan.results[0]?.action !== 'created') throw new Rejected(alreadyExists(r, name));
    const op = plan.ops.find((x) => x.key === key && x.op === 'create');
    if (!op || op.op !== 'create') throw new Error(`apply planned no create of ${key}`);
    if (dryRun) return { object: JSON.parse(op.value) as KubeObject };
    if (await commitChunked(store, plan.ops)) return { object: fromKV((await store.get(key))!) };
  }
  throw new Rejected(alreadyExists(r, name));
}

/**
 * PUT or PATCH: stores `desired` if the key is still at `kv`'s revision; undefined when it moved (the
 * caller reads again). statusOnly (the status subresource) skips `flatnet apply`, which ignores status.
 */
export async function admitUpdate(store: Store, r: Resource, kv: KV, desired: Obj, o: { dryRun: boolean; statusOnly: boolean }): Promise<Admitted | undefined> {
  const name = nameOf(desired);
  if (o.statusOnly || !viaApply(r)) {
    checkStructure(r, desired, name);
    return updateGeneric(store, kv, desired, o.dryRun);
  }
  const parsed = validateAsApply(r, desired);
  let plan;
  try { plan = await planApply(store, [parsed]); } catch (err) {
    if (err instanceof ApplyError) throw applyRefusal(r, name, err);
    throw err;
  }
  const op = plan.ops.find((x) => x.key === kv.key);
  if (!op) {
    // Unchanged: still right only if nobody wrote since our read.
    const now = await store.get(kv.key);
    return now && now.modRevision === kv.modRevision ? { object: fromKV(now) } : undefined;
  }
  if (op.op !== 'update' || op.expectModRevision !== kv.modRevision) return undefined;
  if (o.dryRun) return { object: fromKV({ ...kv, value: op.value }) };
  if (!(await commitChunked(store, plan.ops))) return undefined;
  const now = await store.get(kv.key);
  return now ? { object: fromKV(now) } : undefined;
}

/**
 * DELETE: pods (gracefully), namespaces (with their contents) and Services (freeing their addresses)
 * as `flatnet delete` does; other kinds removed. Returns the object when it is still there (terminating).
 */
export async function admitDelete(store: Store, r: Resource, current: KubeObject, modRevision: number, grace: number | undefined): Promise<KubeObject | undefined> {
  const name = current.metadata.name;
  const namespace = r.namespaced ? current.metadata.namespace : undefined;
  const key = keyOf(r, name, namespace);
  if (!viaApply(r)) {
    await deleteGeneric(store, key, modRevision);
    return undefined;
  }
  let results;
  try {
    results = await deleteObjects(store, [{ kind: r.kind, apiVersion: 'v1', metadata: { name, ...(namespace ? { namespace } : {}) } } as KubeObject], { graceSeconds: grace });
  } catch (err) {
    if (err instanceof ApplyError) throw applyRefusal(r, name, err);
    throw err;
  }
  if (results[0]?.notFound) throw new Rejected(notFound(r, name));
  // The extra kinds (ServiceAccounts, RBAC, ConfigMaps...) go with their namespace too.
  if (r.kind === 'Namespace') {
    for (const extra of RESOURCES.filter((x) => x.namespaced && !isFlatnetKind(x.kind))) {
      for (const kv of (await store.list(prefixOf(extra, name))).items) await store.deleteIf(kv.key, kv.modRevision);
    }
  }
  const left = await store.get(key);
  return left ? fromKV(left) : undefined;
}
