// What the API answers: objects as stored with metadata.resourceVersion set to the key's etcd
// modRevision (the store keeps no resourceVersion of its own: etcd's revision is the version, as in
// kube-apiserver), lists stamped with the store revision they were read at, and errors in the API's
// Status shape (meta/v1 Status), worded as kube-apiserver words them: kubectl prints
// `Error from server (<reason>): <message>` from them.
import type { KV } from '../store/store.js';
import type { KubeObject } from '../api/types.js';
import { groupVersion, type Resource } from './resources.js';

export function fromKV(kv: KV): KubeObject {
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

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string };
  code: number;
}

const failure = (code: number, reason: string, message: string, details?: Status['details']): Status =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });

/** `pods "web-1" not found`: kubectl prints `Error from server (NotFound): pods "web-1" not found`. */
export const notFound = (r: Resource, name: string): Status =>
  failure(404, 'NotFound', `${r.group ? `${r.resource}.${r.group}` : r.resource} "${name}" not found`, { name, group: r.group, kind: r.resource });

/** A URL that names no resource this server has. */
export const pathNotFound = (path: string): Status => failure(404, 'NotFound', `the server could not find the requested resource (${path})`);

export const badRequest = (message: string): Status => failure(400, 'BadRequest', message);

/** A watch from a revision the store has compacted away (etcd's "required revision has been compacted"). */
export const gone = (message: string): Status => failure(410, 'Expired', message);

export const methodNotAllowed = (method: string): Status =>
  failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method}: this lab API is read-only for now)`);

export const unauthorized = (): Status => failure(401, 'Unauthorized', 'Unauthorized');

export const internalError = (message: string): Status => failure(500, 'InternalError', `Internal error occurred: ${message}`);
