// Authentication: who a request is. A client certificate the lab CA signed is the user in its CN with
// the groups in its O's (the admin kubeconfig's CN=flatnet-admin, O=system:masters); otherwise an
// `Authorization: Bearer` ServiceAccount token (tokens.ts). The server accepts a TLS connection without
// a certificate, or with one another CA signed, so that a token can be presented; such a certificate
// proves nothing and is ignored.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Store } from '../../store/store.js';
import type { Pki } from '../pki.js';
import type { User } from './attributes.js';
import { authenticateToken } from './tokens.js';

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
