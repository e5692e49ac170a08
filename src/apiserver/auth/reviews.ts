// The requests this package answers itself rather than the storage handler: TokenRequest (`kubectl
// create token`), SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview (`kubectl auth
// can-i --list`) and SelfSubjectReview
// (`kubectl auth whoami`). Each is a POST whose body is the review (JSON or kubectl's protobuf), answered
// 201 with its status filled in, as JSON.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../../store/store.js';
import type { Pki } from '../pki.js';
import type { Attributes, User } from './attributes.js';
import { badRequestStatus, invalidStatus, notFoundStatus } from './forbidden.js';
import { authorize, rulesFor, type PolicySource } from './rbac.js';
import { DEFAULT_TOKEN_SECONDS, readServiceAccount, signServiceAccountToken } from './tokens.js';
import { PROTOBUF, ProtobufError, reviewFromProtobuf } from './protobuf.js';

/** kube-apiserver refuses shorter tokens: a token must outlive the clock skew and a client's refresh. */
export const MIN_TOKEN_SECONDS = 600;
const MAX_BODY = 1 << 20;

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

class BodyError extends Error {}

async function readJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new BodyError('request body is larger than 1 MiB');
    chunks.push(c as Buffer);
  }
  const raw = Buffer.concat(chunks);
  // kubectl's typed clients send protobuf (protobuf.ts); everyone else JSON. The answer is JSON either way.
  if ((req.headers['content-type'] ?? '').startsWith(PROTOBUF)) {
    try { return reviewFromProtobuf(raw); } catch (err) {
      if (err instanceof ProtobufError) throw new BodyError(`request body is not a readable protobuf: ${err.message}`);
      throw err;
    }
  }
  const text = raw.toString('utf8');
  try { return text.trim() ? JSON.parse(text) : {}; } catch { throw new BodyError('request body is not JSON'); }
}

/** Reads the body and answers with `answer`'s [code, body]; a body that is not JSON is a 400. */
async function review(req: IncomingMessage, res: ServerResponse, answer: (body: any) => Promise<[number, unknown]> | [number, unknown]): Promise<void> {
  let body: any;
  try { body = await readJson(req); } catch (err) {
    if (err instanceof BodyError) return sendJson(res, 400, badRequestStatus(err.message));
    throw err;
  }
  const [code, out] = await answer(body ?? {});
  sendJson(res, code, out);
}

/** POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token. */
export function serveTokenRequest(req: IncomingMessage, res: ServerResponse, store: Store, pki: Pki, namespace: string, name: string): Promise<void> {
  return review(req, res, async (body) => {
    const spec = body.spec ?? {};
    const seconds = spec.expirationSeconds ?? DEFAULT_TOKEN_SECONDS;
    const invalid = (field: string, value: unknown, detail: string): [number, unknown] =>
      [422, invalidStatus({ kind: 'TokenRequest', group: 'authentication.k8s.io', name, field, value, detail })];
    if (!Number.isInteger(seconds)) return invalid('spec.expirationSeconds', seconds, 'must be a whole number of seconds');
    if (seconds < MIN_TOKEN_SECONDS) return invalid('spec.expirationSeconds', seconds, 'may not specify a duration less than 10 minutes');
    if (spec.audiences !== undefined && !(Array.isArray(spec.audiences) && spec.audiences.every((a: unknown) => typeof a === 'string'))) {
      return invalid('spec.audiences', spec.audiences, 'must be a list of strings');
    }
    if (spec.boundObjectRef) return [400, badRequestStatus('spec.boundObjectRef: tokens bound to an object are not supported by the lab API')];
    const sa = await readServiceAccount(store, namespace, name);
    if (!sa) return [404, notFoundStatus('serviceaccounts', name)];
    const issued = signServiceAccountToken(pki, { ...sa, metadata: { ...sa.metadata, namespace } }, seconds, { audiences: spec.audiences });
    return [201, {
      kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') },
      spec: { audiences: issued.audiences, expirationSeconds: seconds, boundObjectRef: null },
      status: { token: issued.token, expirationTimestamp: issued.expirationTimestamp },
    }];
  });
}

/** The attributes a SelfSubjectAccessReview asks about; a string when its spec names neither kind. */
export function reviewAttributes(spec: any): Attributes | string {
  const r = spec?.resourceAttributes, n = spec?.nonResourceAttributes;
  const s = (v: unknown): string => (typeof v === 'string' ? v : '');
  if (r) {
    return { resourceRequest: true, verb: s(r.verb), apiGroup: s(r.group), apiVersion: s(r.version), resource: s(r.resource),
      subresource: s(r.subresource), namespace: s(r.namespace), name: s(r.name), path: '' };
  }
  if (n) return { resourceRequest: false, verb: s(n.verb), path: s(n.path) };
  return 'spec: exactly one of resourceAttributes or nonResourceAttributes must be specified';
}

/** POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews: may the caller do what the spec says? */
export function serveSelfSubjectAccessReview(req: IncomingMessage, res: ServerResponse, policy: PolicySource, user: User): Promise<void> {
  return review(req, res, (body) => {
    const attrs = reviewAttributes(body.spec);
    if (typeof attrs === 'string') return [400, badRequestStatus(attrs)];
    const d = authorize(policy, user, attrs);
    return [201, {
      kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null },
      spec: body.spec, status: { allowed: d.allowed, ...(d.reason ? { reason: d.reason } : {}) },
    }];
  });
}

/** POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews (`kubectl auth can-i --list`): the caller's rules in a namespace. */
export function serveSelfSubjectRulesReview(req: IncomingMessage, res: ServerResponse, policy: PolicySource, user: User): Promise<void> {
  return review(req, res, (body) => {
    const namespace = typeof body.spec?.namespace === 'string' ? body.spec.namespace : '';
    const { rules, problems } = rulesFor(policy, user, namespace);
    const pick = (r: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
    return [201, {
      kind: 'SelfSubjectRulesReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec: { namespace },
      status: {
        resourceRules: rules.filter((r) => r.resources?.length).map((r) => pick({ ...r }, ['verbs', 'apiGroups', 'resources', 'resourceNames'])),
        nonResourceRules: rules.filter((r) => r.nonResourceURLs?.length).map((r) => pick({ ...r }, ['verbs', 'nonResourceURLs'])),
        incomplete: problems.length > 0, ...(problems.length ? { evaluationError: problems.join(', ') } : {}),
      },
    }];
  });
}

/** POST /apis/authentication.k8s.io/v1/selfsubjectreviews: who the server takes the caller for. */
export function serveSelfSubjectReview(req: IncomingMessage, res: ServerResponse, user: User): Promise<void> {
  return review(req, res, () => [201, {
    kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null },
    status: { userInfo: { username: user.name, ...(user.uid ? { uid: user.uid } : {}), groups: user.groups } },
  }]);
}
