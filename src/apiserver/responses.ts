// What the API answers: objects as stored with metadata.resourceVersion set to the key's etcd
// modRevision (the store keeps no resourceVersion of its own: etcd's revision is the version, as in
// kube-apiserver), lists stamped with the store revision they were read at, and errors in the API's
// Status shape (meta/v1 Status), worded as kube-apiserver words them: kubectl prints
// `Error from server (<reason>): <message>` from them.
import type { KV } from '../store/store.js';
import type { KubeObject } from '../api/types.js';
import { groupVersion, type Resource } from './resources.js';

export function fromKV(kv: KV): KubeObject {
  // Extra kinds (ServiceAccount, ClusterRole...) pass through as KubeObject-shaped JSON: only metadata is read.
  const obj = JSON.parse(kv.value) as KubeObject;
  return withVersion(obj, kv.modRevision);
}

export function withVersion(obj: KubeObject, revision: number): KubeObject {
  return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(revision) } } as KubeObject;
}

/** A <Kind>List: apiVersion and kind as kubectl decodes them, items in key order. */
export function toList(r: Resource, items: KubeObject[], revision: number) {
  return { kind: `${r.kind}List`, apiVersion: groupVersion(r), metadata: { resourceVersion: String(revision) }, items };
}

/** One reason an object is invalid: the field and what is wrong with it (kubectl prints them). */
export interface Cause { reason: string; message: string; field?: string }

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string; causes?: Cause[] };
  code: number;
}

const failure = (code: number, reason: string, message: string, details?: Status['details']): Status =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });

/** `pods "web-1" not found`: kubectl prints `Error from server (NotFound): pods "web-1" not found`. */
export const notFound = (r: Resource, name: string): Status =>
  failure(404, 'NotFound', `${r.group ? `${r.resource}.${r.group}` : r.resource} "${name}" not found`, { name, group: r.group, kind: r.resource });

/** "pods" or "deployments.apps": how kube-apiserver names a resource in messages. */
export const qualified = (r: Resource): string => (r.group ? `${r.resource}.${r.group}` : r.resource);

/** `pods "web" already exists`: a create of a name in use. */
export const alreadyExists = (r: Resource, name: string): Status =>
  failure(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, { name, group: r.group, kind: r.resource });

/** A write whose resourceVersion precondition no longer holds: the object moved since the client read it. */
export const conflict = (r: Resource, name: string): Status =>
  failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: r.group, kind: r.resource });

/** `Pod "web" is invalid: spec.containers: ...`: kubectl prints `The Pod "web" is invalid: ...` and the causes. */
export const invalid = (r: Resource, name: string, causes: Cause[]): Status =>
  failure(422, 'Invalid', `${r.kind}${r.group ? `.${r.group}` : ''} "${name}" is invalid: ${causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(', ')}`,
    { name, group: r.group, kind: r.kind, causes });

export const forbidden = (message: string): Status => failure(403, 'Forbidden', message);

/** A DELETE's answer when the object is gone at once and the client asked for no object back. */
export const success = (r: Resource, name: string): Status =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', message: '', reason: '', details: { name, group: r.group, kind: r.resource }, code: 200 });

/** A URL that names no resource this server has. */
export const pathNotFound = (path: string): Status => failure(404, 'NotFound', `the server could not find the requested resource (${path})`);

export const badRequest = (message: string): Status => failure(400, 'BadRequest', message);

/** A watch from a revision the store has compacted away (etcd's "required revision has been compacted"). */
export const gone = (message: string): Status => failure(410, 'Expired', message);

export const methodNotAllowed = (method: string): Status =>
  failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`);

export const unsupportedMediaType = (type: string | undefined): Status =>
  failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${type ?? 'none'})`);

export const unauthorized = (): Status => failure(401, 'Unauthorized', 'Unauthorized');

export const internalError = (message: string): Status => failure(500, 'InternalError', `Internal error occurred: ${message}`);

/** A write refused with this Status (thrown from admission, answered by the handler). */
export class Rejected extends Error {
  constructor(readonly status: Status) {
    super(status.message);
    this.name = 'Rejected';
  }
}
