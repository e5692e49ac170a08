// Which resources the lab's API serves and how each maps to the store: one table, from which the
// discovery documents (what kubectl reads to learn a kind's URL, scope and short names) are derived.
import { kindPrefix, registryPrefix } from '../api/keys.js';
import type { Kind } from '../api/types.js';

export interface Resource {
  /** A flatnet Kind (validated as `flatnet apply` does) or an extra kind stored as given. */
  kind: string;
  /** '' is the legacy core group (/api/v1). */
  group: string;
  version: string;
  /** The URL segment: plural, lowercase. */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories?: string[];
  /** Subresources served under an object (`status`: only .status changes through it). */
  subresources?: string[];
  /** The store prefix holding every object of this resource (all namespaces). */
  registry: string;
}

/** Kinds flatnet reads, validated by `flatnet apply`'s code (api/apply.ts). */
const FLATNET_KINDS: readonly string[] = ['Node', 'Namespace', 'Pod', 'Service', 'EndpointSlice', 'NetworkPolicy', 'Deployment'];
export const isFlatnetKind = (kind: string): kind is Kind => FLATNET_KINDS.includes(kind);

type Row = Omit<Resource, 'registry'>;
const flatnet = (r: Row & { kind: Kind }): Resource => ({ ...r, registry: kindPrefix(r.kind) });
/** An extra kind: stored generically at /registry/<plural>/[<ns>/]<name>. */
const extra = (r: Row): Resource => ({ ...r, registry: registryPrefix(r.resource) });

export const RESOURCES: Resource[] = [
  flatnet({ kind: 'Node', group: '', version: 'v1', resource: 'nodes', singular: 'node', namespaced: false, shortNames: ['no'], subresources: ['status'] }),
  flatnet({ kind: 'Namespace', group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'] }),
  flatnet({ kind: 'Pod', group: '', version: 'v1', resource: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], categories: ['all'], subresources: ['status'] }),
  flatnet({ kind: 'Service', group: '', version: 'v1', resource: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], categories: ['all'], subresources: ['status'] }),
  flatnet({ kind: 'EndpointSlice', group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', singular: 'endpointslice', namespaced: true, shortNames: [] }),
  flatnet({ kind: 'NetworkPolicy', group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies', singular: 'networkpolicy', namespaced: true, shortNames: ['netpol'] }),
  flatnet({ kind: 'Deployment', group: 'apps', version: 'v1', resource: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
  extra({ kind: 'ServiceAccount', group: '', version: 'v1', resource: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'] }),
  extra({ kind: 'ConfigMap', group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'] }),
  extra({ kind: 'Secret', group: '', version: 'v1', resource: 'secrets', singular: 'secret', namespaced: true, shortNames: [] }),
  extra({ kind: 'DaemonSet', group: 'apps', version: 'v1', resource: 'daemonsets', singular: 'daemonset', namespaced: true, shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  extra({ kind: 'ClusterRole', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', singular: 'clusterrole', namespaced: false, shortNames: [] }),
  extra({ kind: 'ClusterRoleBinding', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings', singular: 'clusterrolebinding', namespaced: false, shortNames: [] }),
  extra({ kind: 'Role', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles', singular: 'role', namespaced: true, shortNames: [] }),
  extra({ kind: 'RoleBinding', group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings', singular: 'rolebinding', namespaced: true, shortNames: [] }),
];

/** One resource of an APIResourceList. */
export interface DiscoveryEntry {
  name: string; singularName: string; namespaced: boolean; kind: string; verbs: string[];
  shortNames?: string[]; categories?: string[]; group?: string; version?: string;
}

/**
 * Listed in discovery only: their handlers are the rbac wrapper's (auth/), in front of this handler.
 * kubectl learns from here that `create token` and `auth can-i` are served.
 */
const DISCOVERY_ONLY: Array<{ group: string; version: string; entries: DiscoveryEntry[] }> = [
  { group: '', version: 'v1', entries: [{ name: 'serviceaccounts/token', singularName: '', namespaced: true, group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] }] },
  { group: 'authorization.k8s.io', version: 'v1', entries: [
    { name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', namespaced: false, kind: 'SelfSubjectAccessReview', verbs: ['create'] },
    { name: 'subjectaccessreviews', singularName: 'subjectaccessreview', namespaced: false, kind: 'SubjectAccessReview', verbs: ['create'] },
  ] },
];

/** What kubectl may do with every served resource (it checks these before apply, delete, label...). */
const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export const groupVersion = (r: { group: string; version: string }): string => (r.group ? `${r.group}/${r.version}` : r.version);

/** The store prefix of a resource, across namespaces or in one. */
export const prefixOf = (r: Resource, namespace?: string): string => (r.namespaced && namespace !== undefined ? `${r.registry}${namespace}/` : r.registry);

/** The store key of one object of `r`. */
export function keyOf(r: Resource, name: string, namespace?: string): string {
  if (r.namespaced && !namespace) throw new Error(`${r.kind} "${name}" needs a namespace`);
  return `${prefixOf(r, namespace)}${name}`;
}

export function findKind(apiVersion: string, kind: string): Resource | undefined {
  return RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
}

export function findResource(group: string, version: string, resource: string): Resource | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

/** The named groups (everything but the core group), each with its one version. */
export function apiGroups(): Array<{ name: string; version: string }> {
  const out: Array<{ name: string; version: string }> = [];
  for (const r of [...RESOURCES, ...DISCOVERY_ONLY]) if (r.group && !out.some((g) => g.name === r.group)) out.push({ name: r.group, version: r.version });
  return out;
}

/** GET /api: the core group's versions. */
export const apiVersions = (serverAddress: string) => ({
  kind: 'APIVersions', versions: ['v1'],
  serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
});

/** GET /apis: every named group. */
export function apiGroupList() {
  return {
    kind: 'APIGroupList', apiVersion: 'v1',
    groups: apiGroups().map((g) => {
      const gv = { groupVersion: `${g.name}/${g.version}`, version: g.version };
      return { name: g.name, versions: [gv], preferredVersion: gv };
    }),
  };
}

/** GET /api/v1 or /apis/<group>/<version>: the resources of one group version; undefined when none. */
export function apiResourceList(group: string, version: string) {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  const only = DISCOVERY_ONLY.filter((d) => d.group === group && d.version === version).flatMap((d) => d.entries);
  if (rs.length === 0 && only.length === 0) return undefined;
  return {
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion({ group, version }),
    resources: [
      ...rs.flatMap((r): DiscoveryEntry[] => [{
        name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: VERBS,
        ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
        ...(r.categories ? { categories: r.categories } : {}),
      }, ...(r.subresources ?? []).map((sub) => ({
        name: `${r.resource}/${sub}`, singularName: '', namespaced: r.namespaced, verbs: ['get', 'patch', 'update'],
        ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1', kind: 'Scale' } : { kind: r.kind }),
      }))]),
      ...only,
    ],
  };
}

/** GET /version: the Kubernetes version this API speaks (kubectl warns past one minor of skew). */
export const versionInfo = () => ({
  major: '1', minor: '32', gitVersion: 'v1.32.0-flatnet', gitCommit: '', gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z', goVersion: `node ${process.version}`, compiler: 'tsc', platform: `${process.platform}/${process.arch}`,
});

// Routes: what a request path names. /api/v1/... is the core group, /apis/<group>/<version>/... a named
// one; after the group version come [namespaces/<ns>/]<resource>[/<name>], as in every Kubernetes API.

export type Route =
  | { type: 'version' }
  | { type: 'api' }
  | { type: 'apis' }
  | { type: 'resources'; group: string; version: string }
  | { type: 'group'; group: string }
  | { type: 'objects'; resource: Resource; namespace?: string; name?: string; subresource?: string }
  | { type: 'openapi'; path?: string }
  | { type: 'unknown' };

export function parseRoute(pathname: string): Route {
  const segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  if (segs.length === 1 && segs[0] === 'version') return { type: 'version' };
  if (segs.length === 1 && segs[0] === 'api') return { type: 'api' };
  if (segs.length === 1 && segs[0] === 'apis') return { type: 'apis' };
  if (segs[0] === 'openapi' && segs[1] === 'v3') return segs.length === 2 ? { type: 'openapi' } : { type: 'openapi', path: segs.slice(2).join('/') };
  let group: string, version: string | undefined, rest: string[];
  if (segs[0] === 'api') { group = ''; version = segs[1]; rest = segs.slice(2); }
  else if (segs[0] === 'apis' && segs.length >= 2) {
    group = segs[1]; version = segs[2]; rest = segs.slice(3);
    if (version === undefined) return apiResourceListExists(group) ? { type: 'group', group } : { type: 'unknown' };
  } else return { type: 'unknown' };
  if (version === undefined) return { type: 'unknown' };
  if (rest.length === 0) return apiResourceList(group, version) ? { type: 'resources', group, version } : { type: 'unknown' };
  const gv = (resource: string) => findResource(group, version!, resource);
  // namespaces/<ns>/<resource>[/<name>]: a namespaced resource in one namespace.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const r = gv(rest[2]);
    if (!r || !r.namespaced || rest.length > 5 || !servesSubresource(r, rest[4])) return { type: 'unknown' };
    return { type: 'objects', resource: r, namespace: rest[1], ...(rest[3] !== undefined ? { name: rest[3] } : {}), ...(rest[4] !== undefined ? { subresource: rest[4] } : {}) };
  }
  const r = gv(rest[0]);
  if (!r || rest.length > 3 || !servesSubresource(r, rest[2])) return { type: 'unknown' };
  // A namespaced resource by name needs its namespace in the path.
  if (rest.length >= 2 && r.namespaced) return { type: 'unknown' };
  return { type: 'objects', resource: r, ...(rest[1] !== undefined ? { name: rest[1] } : {}), ...(rest[2] !== undefined ? { subresource: rest[2] } : {}) };
}

const servesSubresource = (r: Resource, sub: string | undefined): boolean => sub === undefined || (r.subresources ?? []).includes(sub);

const apiResourceListExists = (group: string): boolean => ['v1'].some((v) => apiResourceList(group, v) !== undefined);
