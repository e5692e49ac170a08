// The roles every kube-apiserver starts with and binds to every authenticated user, so that a
// ServiceAccount whose own ClusterRole says nothing about discovery can still read /api and /apis
// (kubectl and client libraries do before anything else) and ask what it may do. Same names and rules as
// kube's bootstrap policy (system:discovery, system:public-info-viewer, system:basic-user), plus
// cluster-admin for bindings that refer to it. Not stored: they are part of the server, not the cluster.
import type { Binding, Role } from './rules.js';

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
