// The lab API's certificates, made with the machine's `openssl` (node's crypto makes keys but cannot
// sign X.509 certificates): a CA, a serving certificate for 127.0.0.1 and a client certificate in group
// system:masters, as kubeadm makes for its admin.conf. kubectl (Go's TLS) checks the SAN, the key usages
// and that the CA is marked CA:TRUE, so each is spelled out rather than left to openssl.cnf's defaults.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** The ServiceAccount token signing key (P-256, PKCS#8 PEM) and its public half (SPKI PEM): auth/tokens.ts. */
  saKey: string;
  saPub: string;
}

const FILES = { caCert: 'ca.crt', serverCert: 'server.crt', serverKey: 'server.key', clientCert: 'client.crt', clientKey: 'client.key', saKey: 'sa.key', saPub: 'sa.pub' } as const;

const DAYS = '3650';

function openssl(args: string[]): void {
  try { execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] }); } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

/** A certificate signed by the CA in `dir`, with extensions given as openssl config lines. */
function issue(dir: string, name: string, subject: string, extensions: string[]): void {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions.join('\n') + '\n');
  try {
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', subject]);
    openssl(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
      // A random positive serial: two labs' certificates never share one (Go refuses negative serials).
      '-set_serial', `0x${(randomBytes(15)[0] & 0x7f).toString(16)}${randomBytes(14).toString('hex')}`,
      '-days', DAYS, '-sha256', '-extfile', ext, '-out', join(dir, `${name}.crt`)]);
  } finally {
    rmSync(ext, { force: true });
    rmSync(join(dir, `${name}.csr`), { force: true });
  }
}

/**
 * Makes the CA and both certificates in `dir` (mode 0700: the keys are the cluster's admin rights).
 * `serverIPs`: addresses the serving certificate also names, beside 127.0.0.1 (the lab's control-plane
 * endpoint on the node network, where the agents reach the API).
 */
export function makePki(dir: string, serverIPs: string[] = []): Pki {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o700);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', DAYS, '-subj', '/CN=flatnet-lab-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  issue(dir, 'server', '/CN=kube-apiserver', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth', `subjectAltName=${['IP:127.0.0.1', ...serverIPs.map((ip) => `IP:${ip}`), 'DNS:localhost'].join(',')}`,
  ]);
  issue(dir, 'client', '/O=system:masters/CN=flatnet-admin', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth',
  ]);
  ensureServiceAccountKey(dir);
  return readPki(dir);
}

/**
 * The key ServiceAccount tokens are signed with (kube-apiserver's --service-account-key-file): a bare key
 * pair, no certificate, so node's crypto makes it. Kept when present: tokens already handed out stay valid.
 */
export function ensureServiceAccountKey(dir: string): void {
  if (existsSync(join(dir, FILES.saKey)) && existsSync(join(dir, FILES.saPub))) return;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, FILES.saKey), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, FILES.saPub), publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o600 });
}

/** The PEM texts of a PKI made by makePki. */
export function readPki(dir: string): Pki {
  // A PKI made before tokens existed has no signing key yet: the directory is ours, so make it.
  if (existsSync(join(dir, FILES.caCert))) ensureServiceAccountKey(dir);
  const out = {} as Record<keyof Pki, string>;
  for (const [k, f] of Object.entries(FILES) as Array<[keyof Pki, string]>) {
    const p = join(dir, f);
    if (!existsSync(p)) throw new Error(`${p} is missing: the lab's API certificates are made by "flatnet lab up"`);
    out[k] = readFileSync(p, 'utf8');
  }
  return out;
}

/**
 * A kubeconfig of one cluster, user and context, the CA inline: `credentials` are the user's lines
 * (a client certificate and key, or a bearer token); `namespace` the context's, when given.
 */
export function kubeconfigYaml(o: { cluster: string; server: string; caCert: string; user: string; credentials: Record<string, string>; namespace?: string }): string {
  return [
    'apiVersion: v1', 'kind: Config',
    'clusters:', `- name: ${o.cluster}`, '  cluster:', `    server: ${o.server}`, `    certificate-authority-data: ${b64(o.caCert)}`,
    'users:', `- name: ${o.user}`, '  user:', ...Object.entries(o.credentials).map(([k, v]) => `    ${k}: ${v}`),
    'contexts:', `- name: ${o.cluster}`, '  context:', `    cluster: ${o.cluster}`, `    user: ${o.user}`,
    ...(o.namespace ? [`    namespace: ${o.namespace}`] : []),
    `current-context: ${o.cluster}`, '',
  ].join('\n');
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A kubeconfig holding everything inline (CA, client certificate and key): one file to hand to kubectl. */
export function kubeconfigText(clusterName: string, server: string, pki: Pki): string {
  return kubeconfigYaml({
    cluster: clusterName, server, caCert: pki.caCert, user: `${clusterName}-admin`, namespace: 'default',
    credentials: { 'client-certificate-data': b64(pki.clientCert), 'client-key-data': b64(pki.clientKey) },
  });
}
