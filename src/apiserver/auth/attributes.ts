// Who asks and what for. A request's attributes are read from its method and path alone, the way
// kube-apiserver's RequestInfo does, without knowing which resources exist: an authorizer must answer
// for a resource this server does not serve (a 403 says "secrets is forbidden", not "not found").

export interface User {
  name: string;
  groups: string[];
  uid?: string;
}

export type Attributes =
  | {
    resourceRequest: true;
    verb: string;
    apiGroup: string;
    apiVersion: string;
    resource: string;
    subresource: string;
    /** '' for cluster-scoped requests. */
    namespace: string;
    /** '' for list, watch, create and deletecollection. */
    name: string;
    path: string;
  }
  | { resourceRequest: false; verb: string; path: string };

const METHOD_VERBS: Record<string, string> = { GET: 'get', HEAD: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** Namespaces have subresources of their own: /namespaces/<ns>/status is the namespace's, not a resource "status". */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

export function requestAttributes(method: string, rawUrl: string): Attributes {
  const url = new URL(rawUrl, 'http://lab');
  const path = url.pathname;
  const verb = METHOD_VERBS[method.toUpperCase()] ?? method.toLowerCase();
  let parts = path.split('/').filter((s) => s !== '').map(safeDecode);
  const nonResource = { resourceRequest: false as const, verb, path };
  let apiGroup = '';
  if (parts[0] === 'api') parts = parts.slice(1);
  else if (parts[0] === 'apis' && parts.length >= 2) { apiGroup = parts[1]; parts = parts.slice(2); } else return nonResource;
  // /api, /api/v1, /apis/<group>, /apis/<group>/<version>: discovery documents, non-resource paths.
  if (parts.length < 2) return nonResource;
  const apiVersion = parts[0];
  parts = parts.slice(1);

  let watchPrefix = false;
  // The deprecated /api/v1/watch/... form (kubectl no longer uses it, older clients do).
  if (parts[0] === 'watch' && parts.length > 1) { watchPrefix = true; parts = parts.slice(1); }

  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1];
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2])) parts = parts.slice(2);
  }
  const [resource, name = '', subresource = ''] = parts;
  const q = url.searchParams;
  let finalVerb = verb;
  if (watchPrefix) finalVerb = 'watch';
  else if (verb === 'get' && name === '') finalVerb = ['1', 'true'].includes(q.get('watch') ?? '') ? 'watch' : 'list';
  else if (verb === 'delete' && name === '') finalVerb = 'deletecollection';
  return { resourceRequest: true, verb: finalVerb, apiGroup, apiVersion, resource, subresource, namespace, name, path };
}

function safeDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

/** "pods", "deployments.apps": the resource as kube-apiserver names it in messages. */
export const qualifiedResource = (resource: string, group: string): string => (group ? `${resource}.${group}` : resource);
