// ServiceAccount tokens: JWTs with the claims kube-apiserver puts in them (iss, sub, aud, exp, iat, nbf
// and the kubernetes.io block naming the ServiceAccount and its uid), signed with the lab PKI's sa.key.
// A token is honoured only while its ServiceAccount still exists with the same uid: deleting the
// ServiceAccount (or recreating it under the same name) revokes every token issued for it.
import { randomUUID } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { Pki } from '../pki.js';
import { JwtError, keyId, signJwt, verifyJwt, type Claims } from './jwt.js';
import type { User } from './attributes.js';

/** The issuer kube-apiserver uses by default; also the audience this API accepts (its --api-audiences). */
export const ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const API_AUDIENCES = [ISSUER];
export const DEFAULT_TOKEN_SECONDS = 3600;

export interface ServiceAccount {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string };
}

export const serviceAccountKey = (namespace: string, name: string): string => `/registry/serviceaccounts/${namespace}/${name}`;

export async function readServiceAccount(store: Store, namespace: string, name: string): Promise<ServiceAccount | undefined> {
  const kv = await store.get(serviceAccountKey(namespace, name));
  if (!kv) return undefined;
  try { return JSON.parse(kv.value) as ServiceAccount; } catch { return undefined; }
}

export const serviceAccountUser = (namespace: string, name: string): string => `system:serviceaccount:${namespace}:${name}`;

export interface IssuedToken {
  token: string;
  /** RFC 3339, as TokenRequest's status.expirationTimestamp. */
  expirationTimestamp: string;
  audiences: string[];
}

/** A signed token for `sa`, valid for `seconds` from `now` (ms since the epoch). */
export function signServiceAccountToken(pki: Pki, sa: ServiceAccount, seconds: number,
  o: { audiences?: string[]; now?: number } = {}): IssuedToken {
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  const namespace = sa.metadata.namespace ?? '';
  const audiences = o.audiences?.length ? o.audiences : API_AUDIENCES;
  const claims: Claims = {
    iss: ISSUER, sub: serviceAccountUser(namespace, sa.metadata.name), aud: audiences,
    exp: now + seconds, iat: now, nbf: now, jti: randomUUID(),
    'kubernetes.io': { namespace, serviceaccount: { name: sa.metadata.name, uid: sa.metadata.uid ?? '' } },
  };
  const token = signJwt(claims, pki.saKey, keyId(pki.saPub));
  return { token, expirationTimestamp: new Date((now + seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'), audiences };
}

/**
 * What the lab calls to hand an agent its credentials: a token for the ServiceAccount `namespace/name`
 * as it is in the store now. Throws when the ServiceAccount does not exist.
 */
export async function issueServiceAccountToken(store: Store, pki: Pki, namespace: string, name: string,
  seconds = DEFAULT_TOKEN_SECONDS): Promise<string> {
  const sa = await readServiceAccount(store, namespace, name);
  if (!sa) throw new Error(`serviceaccounts "${name}" not found in namespace "${namespace}"`);
  return signServiceAccountToken(pki, { ...sa, metadata: { ...sa.metadata, namespace } }, seconds).token;
}

/** The user a bearer token stands for, or why it stands for no one. */
export async function authenticateToken(store: Store, pki: Pki, token: string, now = Date.now()): Promise<User | { error: string }> {
  let claims: Claims;
  try { claims = verifyJwt(token, pki.saPub); } catch (err) {
    if (err instanceof JwtError) return { error: `invalid bearer token: ${err.message}` };
    // A key that is not a P-256 key, or a signature of the wrong length: a bad token, not a server fault.
    return { error: `invalid bearer token: ${(err as Error).message}` };
  }
  const t = Math.floor(now / 1000);
  if (claims.iss !== ISSUER) return { error: 'invalid bearer token: wrong issuer' };
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.some((a) => API_AUDIENCES.includes(a as string))) return { error: 'invalid bearer token: token audiences do not include this API' };
  if (typeof claims.exp !== 'number' || claims.exp <= t) return { error: 'invalid bearer token: token has expired' };
  if (typeof claims.nbf === 'number' && claims.nbf > t) return { error: 'invalid bearer token: token is not valid yet' };
  const k = claims['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown; uid?: unknown } } | undefined;
  const namespace = k?.namespace, name = k?.serviceaccount?.name, uid = k?.serviceaccount?.uid;
  if (typeof namespace !== 'string' || typeof name !== 'string' || claims.sub !== serviceAccountUser(namespace, name)) {
    return { error: 'invalid bearer token: not a ServiceAccount token' };
  }
  const sa = await readServiceAccount(store, namespace, name);
  if (!sa) return { error: `invalid bearer token: serviceaccounts "${name}" not found` };
  if ((sa.metadata.uid ?? '') !== uid) return { error: `invalid bearer token: the ServiceAccount's uid is not ${String(uid)} (it was deleted and recreated)` };
  return {
    name: serviceAccountUser(namespace, name), uid: typeof uid === 'string' ? uid : undefined,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

/** A kubeconfig that authenticates with `token` only (no client certificate): what an agent is given. */
export function tokenKubeconfigText(clusterName: string, server: string, caCert: string, user: string, token: string): string {
  return [
    'apiVersion: v1', 'kind: Config',
    'clusters:', `- name: ${clusterName}`, '  cluster:', `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caCert).toString('base64')}`,
    'users:', `- name: ${user}`, '  user:', `    token: ${token}`,
    'contexts:', `- name: ${clusterName}`, '  context:', `    cluster: ${clusterName}`, `    user: ${user}`,
    `current-context: ${clusterName}`, '',
  ].join('\n');
}
