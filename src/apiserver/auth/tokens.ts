// ServiceAccount tokens: JWTs with the claims kube-apiserver puts in them (iss, sub, aud, exp, iat, nbf
// and the kubernetes.io block naming the ServiceAccount and its uid), signed with the lab PKI's sa.key.
// A token is honoured only while its ServiceAccount still exists with the same uid: deleting the
// ServiceAccount (or recreating it under the same name) revokes every token issued for it. The JWT
// signing and verification are at the end of this file.
import { createHash, createPublicKey, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import type { Store } from '../../store/store.js';
import type { Pki } from '../pki.js';
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
  // Any failure here (crypto's included, e.g. a signature of the wrong length) is a bad token, not a server fault.
  try { claims = verifyJwt(token, pki.saPub); } catch (err) { return { error: `invalid bearer token: ${(err as Error).message}` }; }
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

// JSON Web Tokens signed with ES256 (JWS compact form: base64url(header).base64url(claims).base64url(sig)),
// the few lines node's crypto needs rather than a library. ES256's signature is r||s (IEEE P1363), not
// the DER that node produces by default, so dsaEncoding is spelled out both ways.
export type Claims = Record<string, unknown>;

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** A key id derived from the public key, as kube-apiserver puts one in `kid`: verifiers pick a key by it. */
export function keyId(publicKey: KeyObject | string): string {
  const der = (typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url');
}

/** Signs `claims` with a P-256 private key (PEM) as an ES256 JWS. */
export function signJwt(claims: Claims, privateKeyPem: string, kid: string): string {
  const head = b64url(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), { key: privateKeyPem, dsaEncoding: 'ieee-p1363' });
  return `${head}.${body}.${b64url(sig)}`;
}

export class JwtError extends Error {}

/**
 * The claims of `token` when its signature verifies with `publicKeyPem`; JwtError otherwise. Only ES256
 * is accepted: a token naming another algorithm (or "none") is refused before any verification.
 */
export function verifyJwt(token: string, publicKeyPem: string): Claims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new JwtError('not a JWS compact token');
  const [head, body, sig] = parts;
  const header = parseJson(head, 'header');
  if (header.alg !== 'ES256') throw new JwtError(`algorithm ${String(header.alg)} is not accepted`);
  const ok = verify('sha256', Buffer.from(`${head}.${body}`), { key: publicKeyPem, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
  if (!ok) throw new JwtError('signature does not verify');
  return parseJson(body, 'claims');
}

function parseJson(part: string, what: string): Claims {
  let v: unknown;
  try { v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')); } catch { throw new JwtError(`${what} is not JSON`); }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new JwtError(`${what} is not a JSON object`);
  return v as Claims;
}
