// The one wrapper server.ts puts around the storage handler: authenticate (401 when no credential
// holds), authorize with RBAC (403 in kube-apiserver's words), answer the token and review requests here,
// and pass everything else to the inner handler untouched.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../../store/store.js';
import type { Pki } from '../pki.js';
import type { TLSSocket } from 'node:tls';
import { requestAttributes, type Attributes, type User } from './attributes.js';
import { authenticateToken } from './tokens.js';
import { forbiddenStatus, internalErrorStatus, unauthorizedStatus } from './forbidden.js';
import { authorize, StorePolicy } from './rbac.js';
import { sendJson, serveSelfSubjectAccessReview, serveSelfSubjectReview, serveSelfSubjectRulesReview, serveTokenRequest } from './reviews.js';

export interface Auth {
  store: Store;
  pki: Pki;
  policy: StorePolicy;
  log?: (m: string) => void;
  stop(): Promise<void>;
}

/** Starts the RBAC mirrors; resolves once they hold the store's roles and bindings. */
export async function createAuth(o: { store: Store; pki: Pki; log?: (m: string) => void }): Promise<Auth> {
  const policy = new StorePolicy(o.store);
  await policy.start();
  return { store: o.store, pki: o.pki, policy, log: o.log, stop: () => policy.stop() };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function withAuth(auth: Auth, inner: Handler): Handler {
  return (req, res) => {
    guarded(auth, req, res, inner).catch((err: unknown) => {
      auth.log?.(`${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) sendJson(res, 500, internalErrorStatus((err as Error).message));
      else res.destroy();
    });
  };
}

async function guarded(auth: Auth, req: IncomingMessage, res: ServerResponse, inner: Handler): Promise<void> {
  const who = await authenticate(req, auth.store, auth.pki);
  if ('error' in who) {
    // The client learns only "Unauthorized", as from kube-apiserver; the log says why.
    auth.log?.(`401 ${req.method} ${req.url}: ${who.error}`);
    return sendJson(res, 401, unauthorizedStatus());
  }
  const user = who.user;
  const attrs = requestAttributes(req.method ?? 'GET', req.url ?? '/');
  const decision = authorize(auth.policy, user, attrs);
  if (!decision.allowed) return sendJson(res, 403, forbiddenStatus(user, attrs, decision.reason));
  const own = ownRequest(attrs);
  if (own === 'token' && attrs.resourceRequest) return serveTokenRequest(req, res, auth.store, auth.pki, attrs.namespace, attrs.name);
  if (own === 'access-review') return serveSelfSubjectAccessReview(req, res, auth.policy, user);
  if (own === 'rules-review') return serveSelfSubjectRulesReview(req, res, auth.policy, user);
  if (own === 'self-review') return serveSelfSubjectReview(req, res, user);
  return inner(req, res);
}

/** Which of this package's own requests `a` is, if any. */
export function ownRequest(a: Attributes): 'token' | 'access-review' | 'rules-review' | 'self-review' | undefined {
  if (!a.resourceRequest || a.verb !== 'create' || a.apiVersion !== 'v1') return undefined;
  if (a.apiGroup === '' && a.resource === 'serviceaccounts' && a.subresource === 'token' && a.namespace && a.name) return 'token';
  if (a.name !== '') return undefined;
  if (a.apiGroup === 'authorization.k8s.io' && a.resource === 'selfsubjectaccessreviews') return 'access-review';
  if (a.apiGroup === 'authorization.k8s.io' && a.resource === 'selfsubjectrulesreviews') return 'rules-review';
  if (a.apiGroup === 'authentication.k8s.io' && a.resource === 'selfsubjectreviews') return 'self-review';
  return undefined;
}

// Authentication: who a request is. A client certificate the lab CA signed is the user in its CN with
// the groups in its O's (the admin kubeconfig's CN=flatnet-admin, O=system:masters); otherwise an
// `Authorization: Bearer` ServiceAccount token (tokens.ts). The server accepts a TLS connection without
// a certificate, or with one another CA signed, so that a token can be presented; such a certificate
// proves nothing and is ignored.
export type Authentication = { user: User } | { error: string };

export async function authenticate(req: IncomingMessage, store: Store, pki: Pki): Promise<Authentication> {
  const certUser = certificateUser(req.socket as TLSSocket);
  if (certUser) return { user: certUser };
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return { error: 'no credentials: neither a client certificate the lab CA signed nor a bearer token' };
  const r = await authenticateToken(store, pki, m[1]);
  return 'error' in r ? r : { user: r };
}

/** The user of a verified client certificate; undefined when there is none or the CA did not sign it. */
export function certificateUser(socket: TLSSocket): User | undefined {
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = one(cert?.subject?.CN);
  if (!cn) return undefined;
  const groups = many(cert.subject.O);
  return { name: cn, groups: [...groups, 'system:authenticated'] };
}

// Node gives a subject attribute as a string, or as an array when the certificate repeats it.
const many = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const one = (v: string | string[] | undefined): string | undefined => many(v)[0];
