// One kind of the cluster through the Kubernetes API, as the features read it (ObjectCache): client-node's
// informer lists, then watches from the listing's resourceVersion with bookmarks; on 410 Gone it lists
// again and reports what changed (deletes included, so no ghost survives). On any other failure (the API
// server restarted, the connection dropped) the informer stops: this cache restarts it with a backoff.
import { makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { objectKey } from '../api/keys.js';
import type { Kind } from '../api/types.js';
import type { ObjectCache } from '../agent/cluster-view.js';
import type { MirrorChange } from '../store/mirror.js';
import { kubeRequest } from './connect.js';
import { observeWatchBatch } from '../metrics/registry.js';

/** Where a kind lives in the API: "/api/v1/pods", "/apis/discovery.k8s.io/v1/endpointslices". */
export interface KubeResource { kind: Kind; apiVersion: string; path: string }

export const RESOURCES = {
  nodes: { kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes' },
  services: { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
  endpointSlices: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices' },
  pods: { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods' },
  namespaces: { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
  networkPolicies: { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', path: '/apis/networking.k8s.io/v1/networkpolicies' },
} as const satisfies Record<string, KubeResource>;

interface ApiObject { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; resourceVersion?: string } }

export interface InformerCacheOptions {
  log?: (m: string) => void;
  /** First wait before restarting a failed informer; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

export class InformerCache<T extends ApiObject> implements ObjectCache<T> {
  private readonly items = new Map<string, T>();
  private readonly listeners: Array<(changes: MirrorChange<T>[]) => void> = [];
  private readonly informer: Informer<KubernetesObject>;
  private pending: MirrorChange<T>[] = [];
  private stopped = false;
  private failures = 0;
  private backoffMs: number;
  private retry?: NodeJS.Timeout;
  private listed = false;
  private started?: Promise<void>;
  private markListed?: () => void;

  constructor(private readonly kc: KubeConfig, readonly resource: KubeResource, private readonly opts: InformerCacheOptions = {}) {
    this.backoffMs = opts.backoffMs ?? 250;
    // Bookmarks keep the resourceVersion fresh on a quiet kind, so a reconnect rarely meets 410 Gone.
    this.informer = makeInformer(kc, `${resource.path}?allowWatchBookmarks=true`, () => this.list());
    // Counted as the etcd watches are (no lag: a real API server's resourceVersion is opaque).
    this.informer.on('add', (o) => { observeWatchBatch(resource.path, 1, 0, 0); this.changed(o as unknown as T); });
    this.informer.on('update', (o) => { observeWatchBatch(resource.path, 1, 0, 0); this.changed(o as unknown as T); });
    this.informer.on('delete', (o) => { observeWatchBatch(resource.path, 1, 0, 0); this.deleted(o as unknown as T); });
    this.informer.on('error', (err) => this.failed(err));
  }

  get(key: string): T | undefined { return this.items.get(key); }
  keys(): string[] { return [...this.items.keys()].sort(); }
  values(): T[] { return this.keys().map((k) => this.items.get(k)!); }
  get size(): number { return this.items.size; }
  onChange(fn: (changes: MirrorChange<T>[]) => void): this { this.listeners.push(fn); return this; }

  /** Lists and starts watching; resolves once the first listing is held (retrying while the API is down). */
  start(): Promise<void> {
    this.started ??= new Promise<void>((resolve) => {
      this.markListed = resolve;
      void this.connect();
    });
    return this.started;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.informer.stop();
  }

  private keyOf(o: ApiObject): string {
    return objectKey(this.resource.kind, o.metadata.name, o.metadata.namespace);
  }

  /** The listing as the server sent it (plain JSON); a list's items carry no kind, the watch's do. */
  private async list(): Promise<KubernetesListObject<KubernetesObject>> {
    const list = await kubeRequest<{ metadata?: { resourceVersion?: string }; items?: ApiObject[] }>(this.kc, { method: 'GET', path: this.resource.path });
    const items = (list.items ?? []).map((o) => this.typed(o));
    return { apiVersion: this.resource.apiVersion, kind: `${this.resource.kind}List`, metadata: list.metadata ?? {}, items: items as KubernetesObject[] };
  }

  private typed(o: ApiObject): ApiObject {
    return o.kind && o.apiVersion ? o : { apiVersion: this.resource.apiVersion, kind: this.resource.kind, ...o };
  }

  private async connect(): Promise<void> {
    this.retry = undefined;
    if (this.stopped) return;
    const failuresBefore = this.failures;
    try { await this.informer.start(); } catch (err) { this.failed(err); return; }
    // Stopped while listing: the informer goes on to watch regardless; end that watch too.
    if (this.stopped) { await this.informer.stop(); return; }
    if (this.failures !== failuresBefore) return;
    this.backoffMs = this.opts.backoffMs ?? 250;
    if (!this.listed) { this.listed = true; this.flush(); this.markListed?.(); }
  }

  private failed(err: unknown): void {
    this.failures++;
    if (this.stopped || this.retry) return;
    const e = err as { message?: string; statusCode?: number; code?: unknown };
    this.opts.log?.(`${this.resource.path}: watch failed (${e?.message ?? e?.statusCode ?? String(err)}); restarting in ${this.backoffMs} ms`);
    this.retry = setTimeout(() => void this.connect(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 5000);
  }

  private changed(raw: T): void {
    const obj = this.typed(raw) as T;
    const key = this.keyOf(obj);
    const before = this.items.get(key);
    this.items.set(key, obj);
    this.queue({ key, before, after: obj });
  }

  private deleted(raw: T): void {
    const key = this.keyOf(raw);
    const before = this.items.get(key) ?? (this.typed(raw) as T);
    if (!this.items.delete(key)) return;
    this.queue({ key, before });
  }

  /** Changes of one turn (a relisting's many) reach the listeners as one batch, as a Mirror's do. */
  private queue(change: MirrorChange<T>): void {
    this.pending.push(change);
    if (this.pending.length === 1) queueMicrotask(() => this.flush());
  }

  private flush(): void {
    // The first listing is the start state, not changes: the features read it whole after start().
    if (!this.listed) { this.pending = []; return; }
    const changes = this.pending;
    this.pending = [];
    if (changes.length === 0 || this.stopped) return;
    for (const fn of this.listeners) fn(changes);
  }
}
