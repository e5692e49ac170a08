// A lab whose agents read the Kubernetes API (`datastore: kubernetes`) gives them what a kubeadm cluster
// gives a DaemonSet: an API endpoint on the node network (the kubeconfig's 127.0.0.1 is the root
// namespace's loopback, which no node namespace reaches), the RBAC objects of deploy/flatnet.yaml, and a
// kubeconfig with the flatnet ServiceAccount's credentials. The agents then hold exactly the rights that
// manifest grants them in a real cluster.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { Store } from '../store/store.js';
import { kubeconfigYaml, readPki } from '../apiserver/pki.js';
import { hostAddress, type LabCluster } from './cluster-file.js';

/** kube-apiserver's default secure port: the control-plane endpoint kubeadm prints. */
export const CONTROL_PLANE_PORT = 6443;

/** Where agents reach the API: the router's address on the first segment, which every node routes to. */
export function controlPlaneEndpoint(cluster: LabCluster): { host: string; port: number } {
  return { host: hostAddress(cluster.segments[0].subnet, 1), port: CONTROL_PLANE_PORT };
}

/** The install manifest shipped beside the build (dist/bin or dist/src/lab, both under the repo root). */
export function deployManifestPath(file = 'flatnet.yaml'): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const p = join(here, up, 'deploy', file);
    if (existsSync(p)) return p;
  }
  throw new Error(`deploy/${file} not found above ${here}: the lab installs its RBAC objects from it`);
}

/** The kinds of the manifest the lab stores: who the agent is and what it may do (no DaemonSet: the lab runs the agents). */
const RBAC_KINDS = new Set(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']);

const PLURAL: Record<string, string> = {
  Namespace: 'namespaces', ServiceAccount: 'serviceaccounts', ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
};

interface Doc { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; uid?: string; creationTimestamp?: string; labels?: Record<string, string> }; status?: unknown }

/** The manifest's identity and RBAC documents, as kube-apiserver would store them (uid, creationTimestamp). Pure but for uids. */
export function rbacObjects(manifestText: string): Array<{ key: string; object: Doc }> {
  const out: Array<{ key: string; object: Doc }> = [];
  for (const d of parseAllDocuments(manifestText)) {
    const obj = d.toJS() as Doc | null;
    if (!obj || !RBAC_KINDS.has(obj.kind)) continue;
    const m = obj.metadata;
    const key = m.namespace ? `/registry/${PLURAL[obj.kind]}/${m.namespace}/${m.name}` : `/registry/${PLURAL[obj.kind]}/${m.name}`;
    const labels = obj.kind === 'Namespace' ? { ...m.labels, 'kubernetes.io/metadata.name': m.name } : m.labels;
    const status = obj.kind === 'Namespace' ? { status: { phase: 'Active' } } : {};
    out.push({ key, object: { ...obj, metadata: { ...m, ...(labels ? { labels } : {}), uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString() }, ...status } });
  }
  return out;
}

/** Stores the manifest's RBAC objects (creating only what is missing: a restarted lab keeps their uids). */
export async function installRbac(store: Store, manifestFile = deployManifestPath()): Promise<void> {
  for (const { key, object } of rbacObjects(readFileSync(manifestFile, 'utf8'))) {
    await store.create(key, JSON.stringify(object));
  }
}

/** A kubeconfig for a bearer token: what a pod's service account gives client libraries in a real cluster. */
export function tokenKubeconfigText(o: { cluster: string; server: string; caCert: string; user: string; token: string }): string {
  return kubeconfigYaml({ cluster: o.cluster, server: o.server, caCert: o.caCert, user: o.user, credentials: { token: o.token } });
}

export function writeSecretFile(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/**
 * The agents' kubeconfig: the lab CA, the control-plane endpoint and a token of deploy/flatnet.yaml's
 * ServiceAccount, so the agents hold exactly its ClusterRole's rights. No kubelet refreshes a projected
 * token in the lab, so it is issued to outlive the lab (a year).
 */
export async function agentKubeconfigText(store: Store, pkiDir: string, cluster: string, server: string): Promise<string> {
  const { issueServiceAccountToken } = await import('../apiserver/auth/tokens.js');
  const pki = readPki(pkiDir);
  const token = await issueServiceAccountToken(store, pki, AGENT_SA.namespace, AGENT_SA.name, 365 * 24 * 3600);
  return tokenKubeconfigText({ cluster, server, caCert: pki.caCert, user: `system:serviceaccount:${AGENT_SA.namespace}:${AGENT_SA.name}`, token });
}

/** The agent DaemonSet's ServiceAccount in deploy/flatnet.yaml. */
export const AGENT_SA = { namespace: 'flatnet-system', name: 'flatnet' } as const;
