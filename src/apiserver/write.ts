// The API's write side: POST (create), PUT (update), PATCH and DELETE of one object, and the `status`
// subresource. flatnet's own kinds go through `flatnet apply`'s code (admit.ts: its validation, its
// ClusterIP/NodePort allocation, its graceful delete); nodes, EndpointSlices and the extra kinds are
// stored as given after a structural check (generic.ts). Every update is a compare-and-set on the key's
// modRevision: a client's resourceVersion that moved is a 409 Conflict, and a race lost without one is
// retried on the new state, as kube-apiserver's GuaranteedUpdate does.
import type { IncomingMessage } from 'node:http';
import type { Store } from '../store/store.js';
import { PatchError, applyPatch, patchTypeOf, type Json } from './patch.js';
import { groupVersion, keyOf, type Resource } from './resources.js';
import { badRequest, conflict, fromKV, methodNotAllowed, notFound, unsupportedMediaType, type Status } from './responses.js';
import { Rejected, admitCreate, admitDelete, admitUpdate, type Admitted } from './admit.js';
import { fromScale, toScale } from './scale.js';

/** What a write answers: a status code and a body (an object or a Status). */
export interface Reply { code: number; body: unknown }

export interface WriteRequest {
  store: Store;
  r: Resource;
  namespace?: string;
  name?: string;
  subresource?: string;
  query: URLSearchParams;
  method: string;
  contentType?: string;
  body?: Json;
}

type Obj = { [k: string]: Json };
/** Updates tried before giving up on an object that keeps changing under us. */
const ATTEMPTS = 8;
const MAX_BODY = 3 * 1024 * 1024;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const fail = (s: Status): Reply => ({ code: s.code, body: s });

/** The request body as JSON (kubectl and client-node send JSON); undefined when empty. */
export async function readJsonBody(req: IncomingMessage): Promise<Json | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Rejected(badRequest('the request body is too large'));
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try { return JSON.parse(text) as Json; } catch (err) { throw new Rejected(badRequest(`the request body is not JSON: ${(err as Error).message}`)); }
}

export async function handleWrite(w: WriteRequest): Promise<Reply> {
  try {
    if (w.method === 'POST' && w.name === undefined) return await create(w);
    if (w.name === undefined) return fail(methodNotAllowed(w.method));
    if (w.method === 'PUT') return await update(w, w.name, () => (w.subresource === 'scale' && isObj(w.body) ? w.body : replacement(w, w.name!)));
    if (w.method === 'PATCH') return await patch(w, w.name);
    if (w.method === 'DELETE' && w.subresource === undefined) return await remove(w, w.name);
    return fail(methodNotAllowed(w.method));
  } catch (err) {
    if (err instanceof Rejected) return fail(err.status);
    throw err;
  }
}

export const isDryRun = (q: URLSearchParams): boolean => q.getAll('dryRun').includes('All');

async function create(w: WriteRequest): Promise<Reply> {
  if (w.subresource !== undefined) return fail(methodNotAllowed(w.method));
  if (!isObj(w.body)) return fail(badRequest('the body of a create must be an object'));
  const obj = inNamespaceOf(w, w.body);
  const admitted = await admitCreate(w.store, w.r, obj, isDryRun(w.query));
  return { code: 201, body: admitted.object };
}

/**
 * The body as the URL names it: apiVersion and kind filled in when left out (kube-apiserver decodes with
 * the URL's), and refused when different; the namespace the URL's (or absent: the URL's is taken).
 */
function inNamespaceOf(w: WriteRequest, given: Obj): Obj {
  const body: Obj = { ...given, apiVersion: given.apiVersion ?? groupVersion(w.r), kind: given.kind ?? w.r.kind };
  if (body.apiVersion !== groupVersion(w.r) || body.kind !== w.r.kind) {
    throw new Rejected(badRequest(`the object (${String(body.apiVersion)} ${String(body.kind)}) is not what the URL names (${groupVersion(w.r)} ${w.r.kind})`));
  }
  const meta = isObj(body.metadata) ? body.metadata : {};
  if (w.r.namespaced) {
    if (meta.namespace !== undefined && meta.namespace !== w.namespace) {
      throw new Rejected(badRequest('the namespace of the provided object does not match the namespace sent on the request'));
    }
    return { ...body, metadata: { ...meta, namespace: w.namespace ?? 'default' } };
  }
  return body;
}

/** PUT's body: the whole object, whose name must be the URL's. */
function replacement(w: WriteRequest, name: string): Obj {
  if (!isObj(w.body)) throw new Rejected(badRequest('the body of an update must be an object'));
  const meta = isObj(w.body.metadata) ? w.body.metadata : {};
  if (meta.name !== undefined && meta.name !== name) throw new Rejected(badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`));
  return inNamespaceOf(w, { ...w.body, metadata: { ...meta, name } });
}

async function patch(w: WriteRequest, name: string): Promise<Reply> {
  const type = patchTypeOf(w.contentType);
  if (!type) return fail(unsupportedMediaType(w.contentType));
  if (w.body === undefined) return fail(badRequest('a patch needs a body'));
  return update(w, name, (current) => {
    try {
      const out = applyPatch(type, current, w.body as Json, w.r.kind);
      if (!isObj(out)) throw new Rejected(badRequest('the patch does not leave an object'));
      return out;
    } catch (err) {
      if (err instanceof PatchError) throw new Rejected(badRequest(`the patch could not be applied: ${err.message}`));
      throw err;
    }
  });
}

/**
 * Read, compute the new object from the stored one (with its resourceVersion, so a patch may test it),
 * and compare-and-set. A resourceVersion the client gave (`pinned`) that moved is a 409; a race lost
 * without one is run again on the new state.
 */
async function update(w: WriteRequest, name: string, compute: (current: Obj) => Obj): Promise<Reply> {
  const key = keyOf(w.r, name, w.namespace);
  const pinned = clientResourceVersion(w);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const kv = await w.store.get(key);
    if (!kv) return fail(notFound(w.r, name));
    const current = JSON.parse(kv.value) as Obj;
    // Through `scale` the client sees and changes a Scale; the Deployment takes its replicas.
    const scaling = w.subresource === 'scale';
    const view = scaling ? toScale(fromKV(kv)) : (fromKV(kv) as unknown as Obj);
    const next = scaling ? fromScale(current, compute(view)) : compute(view);
    const wanted = isObj(next.metadata) ? next.metadata.resourceVersion : undefined;
    if (wanted !== undefined && wanted !== null && wanted !== '' && String(wanted) !== String(kv.modRevision)) return fail(conflict(w.r, name));
    const desired = merged(w, current, next);
    const admitted: Admitted | undefined = await admitUpdate(w.store, w.r, kv, desired, { dryRun: isDryRun(w.query), statusOnly: w.subresource === 'status' });
    if (admitted) return { code: 200, body: scaling ? toScale(admitted.object) : admitted.object };
    if (pinned) return fail(conflict(w.r, name));
  }
  return fail(conflict(w.r, name));
}

/** Whether the request itself names a resourceVersion (PUT's object, a merge patch's metadata, a JSON patch's path). */
function clientResourceVersion(w: WriteRequest): boolean {
  if (Array.isArray(w.body)) return w.body.some((op) => isObj(op) && op.path === '/metadata/resourceVersion');
  const meta = isObj(w.body) && isObj(w.body.metadata) ? w.body.metadata : {};
  return meta.resourceVersion !== undefined && meta.resourceVersion !== null && meta.resourceVersion !== '';
}

/**
 * What is stored after an update: the server keeps the identity and lifecycle metadata; through `status`
 * only .status changes, and through the object itself .status does not (as kube-apiserver does for every
 * resource with a status subresource).
 */
function merged(w: WriteRequest, current: Obj, next: Obj): Obj {
  if (w.subresource === 'status') return withField(current, 'status', next.status);
  const cm = isObj(current.metadata) ? current.metadata : {};
  const nm = isObj(next.metadata) ? next.metadata : {};
  const metadata: Obj = { ...nm };
  for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
    if (cm[k] === undefined) delete metadata[k]; else metadata[k] = cm[k];
  }
  delete metadata.resourceVersion;
  const out: Obj = { ...next, apiVersion: current.apiVersion, kind: current.kind, metadata };
  return w.r.subresources?.includes('status') ? withField(out, 'status', current.status) : out;
}

const withField = (o: Obj, field: string, value: Json | undefined): Obj => {
  const out = { ...o };
  if (value === undefined || value === null) delete out[field]; else out[field] = value;
  return out;
};

/** DELETE: `gracePeriodSeconds` from the query or the DeleteOptions body; a precondition on resourceVersion. */
async function remove(w: WriteRequest, name: string): Promise<Reply> {
  const opts = isObj(w.body) ? w.body : {};
  const graceText = w.query.get('gracePeriodSeconds') ?? (opts.gracePeriodSeconds !== undefined ? String(opts.gracePeriodSeconds) : undefined);
  const grace = graceText === undefined || graceText === null ? undefined : Number(graceText);
  if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) return fail(badRequest(`gracePeriodSeconds: ${graceText} is not a number of seconds`));
  const pre = isObj(opts.preconditions) ? opts.preconditions : {};
  const key = keyOf(w.r, name, w.namespace);
  const kv = await w.store.get(key);
  if (!kv) return fail(notFound(w.r, name));
  if (pre.resourceVersion !== undefined && String(pre.resourceVersion) !== String(kv.modRevision)) return fail(conflict(w.r, name));
  const current = fromKV(kv);
  if (pre.uid !== undefined && pre.uid !== current.metadata.uid) return fail(conflict(w.r, name));
  if (isDryRun(w.query)) return { code: 200, body: current };
  const left = await admitDelete(w.store, w.r, current, kv.modRevision, grace);
  // Still there (a pod terminating, a namespace emptying): the object as it is now, else as it was.
  return { code: 200, body: left ?? current };
}
