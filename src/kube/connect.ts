// How flatnet reaches a Kubernetes API: a kubeconfig file (--kubeconfig, as kubectl), or, in a pod, the
// ServiceAccount's token and CA that the kubelet mounts (what a DaemonSet's agent has). Plus the one
// raw request helper the writers use: JSON in, JSON out, the API's Status message on failure.
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';

/** The client configuration from `file`, else the in-cluster ServiceAccount. */
export function connectKube(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    kc.loadFromFile(file);
  } else {
    // Outside a pod loadFromCluster builds "https://undefined:undefined": say what is missing instead.
    if (!process.env.KUBERNETES_SERVICE_HOST) throw new Error('no --kubeconfig given and not in a pod (KUBERNETES_SERVICE_HOST is unset)');
    kc.loadFromCluster();
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${file ?? '(in-cluster)'}: no current cluster`);
  return kc;
}

/** A failed request: the HTTP status and the API's Status reason and message. */
export class KubeApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) { super(message); }
}

export interface KubeRequest {
  method: 'GET' | 'PATCH' | 'POST' | 'PUT' | 'DELETE';
  /** The path below the server URL, with its query: "/api/v1/nodes?limit=500". */
  path: string;
  body?: unknown;
  /** For PATCH: application/strategic-merge-patch+json, application/merge-patch+json... */
  contentType?: string;
}

/**
 * One API call with the kubeconfig's credentials. The answer is the JSON exactly as the server sent it
 * (client-node's typed APIs turn timestamps into Date objects; the features read plain API JSON).
 */
export async function kubeRequest<T = unknown>(kc: KubeConfig, r: KubeRequest): Promise<T> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig: no current cluster');
  const url = new URL(server.replace(/\/+$/, '') + r.path);
  const opts: RequestOptions = { method: r.method, headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const body = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body));
  if (body) Object.assign(opts.headers!, { 'content-type': r.contentType ?? 'application/json', 'content-length': String(body.length) });
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send(url, opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  let parsed: any;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  if (status < 200 || status >= 300) {
    const message = typeof parsed?.message === 'string' ? parsed.message : text.slice(0, 200) || `HTTP ${status}`;
    throw new KubeApiError(status, typeof parsed?.reason === 'string' ? parsed.reason : '', `${r.method} ${r.path}: ${status} ${message}`);
  }
  return parsed as T;
}
