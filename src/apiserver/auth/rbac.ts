// The RBAC authorizer: a request is allowed when some ClusterRoleBinding, or some RoleBinding in the
// request's namespace, names the user (or one of its groups, or its ServiceAccount) and refers to a role
// with a rule that matches (rules.ts). Group system:masters is allowed everything, as in kube-apiserver.
// The roles and bindings are read through Mirrors (a cached list + watch), so a decision costs no store
// round trip and a binding written a moment ago already counts.
import type { Store } from '../../store/store.js';
import { Mirror, jsonDecode } from '../../store/mirror.js';
import type { Attributes, User } from './attributes.js';
import { bindingApplies, ruleAllows, type Binding, type PolicyRule, type Role } from './rules.js';

export interface Decision {
  allowed: boolean;
  /** Why a binding could not be followed (its role is missing): appended to a 403's message. */
  reason: string;
}

/** Where the roles and bindings come from: the store's mirrors in the server, plain lists in tests. */
export interface PolicySource {
  clusterRole(name: string): Role | undefined;
  role(namespace: string, name: string): Role | undefined;
  clusterRoleBindings(): Binding[];
  roleBindings(namespace: string): Binding[];
}

export const SUPERUSER_GROUP = 'system:masters';

export function authorize(policy: PolicySource, user: User, a: Attributes): Decision {
  if (user.groups.includes(SUPERUSER_GROUP)) return { allowed: true, reason: '' };
  const problems: string[] = [];
  for (const role of boundRoles(policy, user, a.resourceRequest ? a.namespace : '')) {
    if (typeof role === 'string') problems.push(role);
    else if ((role.rules ?? []).some((r) => ruleAllows(r, a))) return { allowed: true, reason: '' };
  }
  return { allowed: false, reason: problems.length ? `RBAC: ${problems.join(', ')}` : '' };
}

/** Every rule the user holds at cluster scope and in `namespace` (SelfSubjectRulesReview), and the missing roles. */
export function rulesFor(policy: PolicySource, user: User, namespace: string): { rules: PolicyRule[]; problems: string[] } {
  if (user.groups.includes(SUPERUSER_GROUP)) return { rules: BOOTSTRAP_ROLES[0].rules ?? [], problems: [] };
  const rules: PolicyRule[] = [], problems: string[] = [];
  for (const role of boundRoles(policy, user, namespace)) {
    if (typeof role === 'string') problems.push(role); else rules.push(...(role.rules ?? []));
  }
  return { rules, problems };
}

/**
 * The roles the user's bindings give it: every ClusterRoleBinding's (a ClusterRoleBinding may only refer
 * to a ClusterRole), then, with a namespace, that namespace's RoleBindings'. A role that is missing comes
 * as the text saying so.
 */
function* boundRoles(policy: PolicySource, user: User, namespace: string): Generator<Role | string> {
  const missing = (kind: string, name: string) => `${kind.toLowerCase()}.rbac.authorization.k8s.io "${name}" not found`;
  const clusterRole = (name: string) => policy.clusterRole(name) ?? BOOTSTRAP_ROLES.find((r) => r.metadata.name === name);
  for (const b of [...BOOTSTRAP_BINDINGS, ...policy.clusterRoleBindings()]) {
    if (b.roleRef.kind !== 'ClusterRole' || !bindingApplies(b, user)) continue;
    yield clusterRole(b.roleRef.name) ?? missing('ClusterRole', b.roleRef.name);
  }
  if (!namespace) return;
  for (const b of policy.roleBindings(namespace)) {
    if (!bindingApplies(b, user)) continue;
    const ref = b.roleRef;
    const role = ref.kind === 'ClusterRole' ? clusterRole(ref.name) : ref.kind === 'Role' ? policy.role(namespace, ref.name) : undefined;
    yield role ?? missing(ref.kind, ref.name);
  }
}

const PREFIXES = {
  clusterRoles: '/registry/clusterroles/',
  clusterRoleBindings: '/registry/clusterrolebindings/',
  roles: '/registry/roles/',
  roleBindings: '/registry/rolebindings/',
} as const;

/** The store's RBAC objects, mirrored (authorize adds the bootstrap ClusterRoles for names the store does not hold). */
export class StorePolicy implements PolicySource {
  private readonly clusterRoles: Mirror<Role>;
  private readonly crbs: Mirror<Binding>;
  private readonly roles: Mirror<Role>;
  private readonly rbs: Mirror<Binding>;

  constructor(store: Store) {
    this.clusterRoles = new Mirror<Role>(store, PREFIXES.clusterRoles, jsonDecode);
    this.crbs = new Mirror<Binding>(store, PREFIXES.clusterRoleBindings, jsonDecode);
    this.roles = new Mirror<Role>(store, PREFIXES.roles, jsonDecode);
    this.rbs = new Mirror<Binding>(store, PREFIXES.roleBindings, jsonDecode);
  }

  private get all() { return [this.clusterRoles, this.crbs, this.roles, this.rbs]; }

  async start(): Promise<void> { await Promise.all(this.all.map((m) => m.start())); }
  async stop(): Promise<void> { await Promise.all(this.all.map((m) => m.stop())); }

  clusterRole(name: string): Role | undefined {
    return this.clusterRoles.get(`${PREFIXES.clusterRoles}${name}`);
  }

  role(namespace: string, name: string): Role | undefined { return this.roles.get(`${PREFIXES.roles}${namespace}/${name}`); }

  clusterRoleBindings(): Binding[] { return this.crbs.values(); }

  roleBindings(namespace: string): Binding[] {
    const prefix = `${PREFIXES.roleBindings}${namespace}/`;
    return this.rbs.keys().filter((k) => k.startsWith(prefix)).map((k) => {
      const b = this.rbs.get(k)!;
      // The key is the truth about the namespace: a stored object without metadata.namespace still binds there.
      return { ...b, metadata: { ...b.metadata, namespace } };
    });
  }
}

// The roles every kube-apiserver starts with and binds to every authenticated user, so that a
// ServiceAccount whose own ClusterRole says nothing about discovery can still read /api and /apis
// (kubectl and client libraries do before anything else) and ask what it may do. Same names and rules as
// kube's bootstrap policy (system:discovery, system:public-info-viewer, system:basic-user), plus
// cluster-admin for bindings that refer to it. Not stored: they are part of the server, not the cluster.
const DISCOVERY_URLS = ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'];
const PUBLIC_INFO_URLS = ['/healthz', '/livez', '/readyz', '/version', '/version/'];

export const BOOTSTRAP_ROLES: Role[] = [
  { kind: 'ClusterRole', metadata: { name: 'cluster-admin' }, rules: [
    { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
    { verbs: ['*'], nonResourceURLs: ['*'] },
  ] },
  { kind: 'ClusterRole', metadata: { name: 'system:discovery' }, rules: [{ verbs: ['get'], nonResourceURLs: DISCOVERY_URLS }] },
  { kind: 'ClusterRole', metadata: { name: 'system:public-info-viewer' }, rules: [{ verbs: ['get'], nonResourceURLs: PUBLIC_INFO_URLS }] },
  { kind: 'ClusterRole', metadata: { name: 'system:basic-user' }, rules: [
    { verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] },
    { verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'] },
  ] },
];

const toGroup = (role: string, group: string): Binding => ({
  kind: 'ClusterRoleBinding', metadata: { name: role },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: group }],
});

export const BOOTSTRAP_BINDINGS: Binding[] = [
  toGroup('system:discovery', 'system:authenticated'),
  toGroup('system:public-info-viewer', 'system:authenticated'),
  toGroup('system:basic-user', 'system:authenticated'),
];
