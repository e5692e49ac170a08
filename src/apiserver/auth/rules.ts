// RBAC's matching, as pure functions over rbac.authorization.k8s.io/v1 objects: does a rule allow these
// attributes, does a binding's subject name this user. `*` matches any verb, group, resource or URL;
// `*/status` any resource's status subresource; resourceNames narrow a rule to the objects named.
import type { Attributes, User } from './attributes.js';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: 'User' | 'Group' | 'ServiceAccount' | string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export interface RoleRef { apiGroup?: string; kind: 'ClusterRole' | 'Role' | string; name: string }

export interface Role {
  kind?: 'Role' | 'ClusterRole';
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[] | null;
}

export interface Binding {
  kind?: 'RoleBinding' | 'ClusterRoleBinding';
  metadata: { name: string; namespace?: string };
  roleRef: RoleRef;
  subjects?: Subject[] | null;
}

const has = (list: string[] | undefined, v: string): boolean => !!list && (list.includes('*') || list.includes(v));

function resourceMatches(rule: PolicyRule, resource: string, subresource: string): boolean {
  const want = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === want) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function urlMatches(rule: PolicyRule, path: string): boolean {
  return (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))));
}

export function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) return urlMatches(rule, a.path);
  if (!has(rule.apiGroups, a.apiGroup) || !resourceMatches(rule, a.resource, a.subresource)) return false;
  const names = rule.resourceNames ?? [];
  // A rule limited to names never allows a request that names no object (list, create, deletecollection).
  return names.length === 0 || (a.name !== '' && names.includes(a.name));
}

/** `bindingNamespace`: a RoleBinding's own namespace, which a ServiceAccount subject without one is in. */
export function subjectMatches(s: Subject, user: User, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User': return s.name === user.name;
    case 'Group': return user.groups.includes(s.name);
    case 'ServiceAccount': {
      const ns = s.namespace || bindingNamespace;
      return ns !== '' && user.name === `system:serviceaccount:${ns}:${s.name}`;
    }
    default: return false;
  }
}

export const bindingApplies = (b: Binding, user: User): boolean =>
  (b.subjects ?? []).some((s) => subjectMatches(s, user, b.metadata.namespace ?? ''));
