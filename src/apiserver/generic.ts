// Objects the API stores as given: nodes and EndpointSlices (their writers are flatnet's own agent and
// controller), status writes, and the extra kinds kubectl applies from deploy/flatnet.yaml
// (ServiceAccount, ConfigMap, Secret, DaemonSet, RBAC) that flatnet keeps for others to read. Only the
// structure is checked: apiVersion and kind match the URL, and metadata.name is a DNS subdomain.
import { randomUUID } from 'node:crypto';
import type { KV, Store } from '../store/store.js';
import type { KubeObject } from '../api/types.js';
import { dnsNameProblem } from '../api/names.js';
import { groupVersion, keyOf, type Resource } from './resources.js';
import { Rejected, alreadyExists, badRequest, fromKV, invalid } from './responses.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Kubernetes' timestamp format: RFC 3339 in UTC, whole seconds. */
const timestamp = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** apiVersion and kind as the URL says (filled in when left out), and a valid metadata.name. */
export function checkStructure(r: Resource, o: Obj, name: string): void {
  const gv = groupVersion(r);
  if (o.apiVersion !== undefined && o.apiVersion !== gv) throw new Rejected(badRequest(`the API version in the data (${String(o.apiVersion)}) does not match the expected API version (${gv})`));
  if (o.kind !== undefined && o.kind !== r.kind) throw new Rejected(badRequest(`the kind in the data (${String(o.kind)}) does not match the expected kind (${r.kind})`));
  if (!isObj(o.metadata)) throw new Rejected(invalid(r, name, [{ reason: 'FieldValueRequired', message: 'Required value', field: 'metadata' }]));
  if (name === '') throw new Rejected(invalid(r, name, [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }]));
  const problem = dnsNameProblem(name, 'subdomain');
  if (problem) throw new Rejected(invalid(r, name, [{ reason: 'FieldValueInvalid', message: `Invalid value: "${name}": ${problem}`, field: 'metadata.name' }]));
  for (const field of ['labels', 'annotations'] as const) {
    const m = o.metadata[field];
    if (m !== undefined && (!isObj(m) || Object.values(m).some((v) => typeof v !== 'string'))) {
      throw new Rejected(invalid(r, name, [{ reason: 'FieldValueInvalid', message: 'Invalid value: a map of strings is expected', field: `metadata.${field}` }]));
    }
  }
}

/** The object as first stored: apiVersion and kind filled in, a uid and creationTimestamp set. */
function initial(r: Resource, o: Obj): Obj {
  const { resourceVersion: _rv, generateName: _g, ...meta } = o.metadata as Obj;
  return { ...o, apiVersion: groupVersion(r), kind: r.kind, metadata: { ...meta, uid: randomUUID(), creationTimestamp: timestamp() } };
}

export async function createGeneric(store: Store, r: Resource, o: Obj, dryRun: boolean): Promise<KubeObject> {
  const obj = initial(r, o);
  const meta = obj.metadata as Obj;
  const name = String(meta.name);
  const key = keyOf(r, name, r.namespaced ? String(meta.namespace) : undefined);
  if (dryRun) {
    if (await store.get(key)) throw new Rejected(alreadyExists(r, name));
    return obj as unknown as KubeObject;
  }
  if (!(await store.create(key, JSON.stringify(obj)))) throw new Rejected(alreadyExists(r, name));
  return fromKV((await store.get(key))!);
}

/** Compare-and-set on `kv`'s revision; undefined when the key moved meanwhile. */
export async function updateGeneric(store: Store, kv: KV, desired: Obj, dryRun: boolean): Promise<{ object: KubeObject } | undefined> {
  const value = JSON.stringify(desired);
  if (dryRun) return { object: fromKV({ ...kv, value }) };
  if (value === kv.value) return { object: fromKV(kv) };
  if (!(await store.update(kv.key, value, kv.modRevision))) return undefined;
  const now = await store.get(kv.key);
  return now ? { object: fromKV(now) } : undefined;
}

/** Removes the key; a write in between (the object changed) is no reason to keep it. */
export async function deleteGeneric(store: Store, key: string, modRevision: number): Promise<void> {
  if (await store.deleteIf(key, modRevision)) return;
  await store.delete(key);
}
