// JSON Web Tokens signed with ES256 (JWS compact form: base64url(header).base64url(claims).base64url(sig)),
// the few lines node's crypto needs rather than a library. ES256's signature is r||s (IEEE P1363), not
// the DER that node produces by default, so dsaEncoding is spelled out both ways.
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

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
