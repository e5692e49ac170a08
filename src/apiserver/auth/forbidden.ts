// The Status bodies authentication and authorization answer with, worded as kube-apiserver words them:
// kubectl prints `Error from server (Forbidden): <message>` and scripts match on that text.
import type { Attributes, User } from './attributes.js';
import { qualifiedResource } from './attributes.js';

export interface AuthStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ reason: string; message: string; field: string }> };
  code: number;
}

const failure = (code: number, reason: string, message: string, details?: AuthStatus['details']): AuthStatus =>
  ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });

export const unauthorizedStatus = (): AuthStatus => failure(401, 'Unauthorized', 'Unauthorized');

/**
 * `pods is forbidden: User "u" cannot delete resource "pods" in API group "" in the namespace "default"`;
 * `nodes "n1" is forbidden: ... resource "nodes/status" ... at the cluster scope`; `forbidden: User "u"
 * cannot get path "/x"`. `reason` (a binding whose role is missing) follows after ": ", as kube's does.
 */
export function forbiddenMessage(user: User, a: Attributes, reason = ''): string {
  const why = reason ? `: ${reason}` : '';
  if (!a.resourceRequest) return `forbidden: User "${user.name}" cannot ${a.verb} path "${a.path}"${why}`;
  const subject = `${qualifiedResource(a.resource, a.apiGroup)}${a.name ? ` "${a.name}"` : ''}`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${subject} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${scope}${why}`;
}

export function forbiddenStatus(user: User, a: Attributes, reason = ''): AuthStatus {
  const details = a.resourceRequest ? { ...(a.name ? { name: a.name } : {}), group: a.apiGroup, kind: a.resource } : undefined;
  return failure(403, 'Forbidden', forbiddenMessage(user, a, reason), details);
}

export const notFoundStatus = (resource: string, name: string): AuthStatus =>
  failure(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });

export const badRequestStatus = (message: string): AuthStatus => failure(400, 'BadRequest', message);

/** `TokenRequest.authentication.k8s.io "x" is invalid: spec.expirationSeconds: Invalid value: 60: <detail>`. */
export function invalidStatus(o: { kind: string; group: string; name: string; field: string; value: unknown; detail: string }): AuthStatus {
  const invalid = `Invalid value: ${JSON.stringify(o.value)}: ${o.detail}`;
  return failure(422, 'Invalid', `${o.kind}.${o.group} "${o.name}" is invalid: ${o.field}: ${invalid}`,
    { name: o.name, group: o.group, kind: o.kind, causes: [{ reason: 'FieldValueInvalid', message: invalid, field: o.field }] });
}

export const internalErrorStatus = (message: string): AuthStatus => failure(500, 'InternalError', `Internal error occurred: ${message}`);
