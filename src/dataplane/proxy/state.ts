// The proxy table's wanted elements, kept current one Service at a time, as kube-proxy's change
// trackers do: a change to a Service or to one of its EndpointSlices re-renders that Service alone and
// records which elements it touched, so the applier compares those, not the whole table. At 10,000
// Services a whole render costs 0.1-0.2 s; one Service's costs microseconds.
import { SERVICE_NAME_LABEL, serviceId, type EndpointSlice, type Service } from '../../api/types.js';
import { PROXY_MAPS, emptyElements, hairpinKey, renderService, type NodeView, type ProxyMap, type ProxyPlan, type ServiceFragment } from './render.js';

export interface ProxyChanges {
  /** Compare every element: the plan was rebuilt whole since the last take. */
  full: boolean;
  /** Otherwise, per map, the keys whose wanted value may have changed. */
  touched: Record<ProxyMap, Set<string>>;
}

const emptyTouched = () => Object.fromEntries(PROXY_MAPS.map((m) => [m, new Set<string>()])) as Record<ProxyMap, Set<string>>;

/** Reference counts of things several Services share (pick chains, affinity chains, hairpin addresses). */
class Counter<K> {
  private readonly n = new Map<K, number>();
  /** Returns true when `k` went from absent to present. */
  up(k: K): boolean { const c = this.n.get(k) ?? 0; this.n.set(k, c + 1); return c === 0; }
  /** Returns true when `k` went from present to absent. */
  down(k: K): boolean {
    const c = this.n.get(k) ?? 0;
    if (c <= 1) { this.n.delete(k); return c === 1; }
    this.n.set(k, c - 1);
    return false;
  }
}

export class ProxyState {
  /** The wanted table; its maps change in place, so whoever keeps a copy must copy. */
  readonly plan: ProxyPlan = { elements: emptyElements(), counts: new Set(), affinityTimeouts: new Set() };
  private readonly services = new Map<string, Service>();
  private readonly slices = new Map<string, EndpointSlice>();
  /** Service id → ids of the slices labelled with it. */
  private readonly slicesOf = new Map<string, Set<string>>();
  private readonly fragments = new Map<string, ServiceFragment>();
  private counts = new Counter<number>();
  private timeouts = new Counter<number>();
  private local = new Counter<string>();
  private dirty = new Set<string>();
  private touched = emptyTouched();
  private wholeNeeded = true;
  /**
   * Elements two Services both claim. The allocators never let that happen (one ClusterIP, one NodePort,
   * one owner), but a hand-edited store could: while any exist, every take renders the whole table, so
   * the outcome is the same as renderProxy's (the Service listed last wins).
   */
  private clashes = 0;

  constructor(private readonly node: NodeView) {}

  /** A Service was added, changed (`svc`) or deleted (undefined). */
  setService(id: string, svc: Service | undefined): void {
    if (svc) this.services.set(id, svc);
    else this.services.delete(id);
    this.dirty.add(id);
  }

  /** An EndpointSlice was added, changed or deleted; `id` is "namespace/name" of the slice. */
  setSlice(id: string, slice: EndpointSlice | undefined): void {
    const before = this.slices.get(id);
    const owner = (s: EndpointSlice | undefined) => {
      const name = s?.metadata.labels?.[SERVICE_NAME_LABEL];
      return s && name ? serviceId(s.metadata.namespace, name) : undefined;
    };
    const was = owner(before);
    const is = owner(slice);
    if (was !== undefined) { this.slicesOf.get(was)?.delete(id); this.dirty.add(was); }
    if (slice) this.slices.set(id, slice);
    else this.slices.delete(id);
    if (is !== undefined) {
      if (!this.slicesOf.has(is)) this.slicesOf.set(is, new Set());
      this.slicesOf.get(is)!.add(id);
      this.dirty.add(is);
    }
  }

  /** The next take renders everything again (the periodic full resync). */
  invalidate(): void { this.wholeNeeded = true; }

  /** Brings `plan` up to date and says what changed since the last take. */
  take(): ProxyChanges {
    if (!this.wholeNeeded && this.clashes === 0) {
      for (const id of this.dirty) this.rerender(id);
      this.dirty.clear();
      if (this.clashes === 0) {
        const touched = this.touched;
        this.touched = emptyTouched();
        return { full: false, touched };
      }
    }
    this.renderWhole();
    return { full: true, touched: emptyTouched() };
  }

  private sliceList(id: string): EndpointSlice[] {
    // In id order, as the store lists them, so duplicate endpoints resolve as a whole render would.
    return [...(this.slicesOf.get(id) ?? [])].sort().map((s) => this.slices.get(s)!);
  }

  private rerender(id: string): void {
    const old = this.fragments.get(id);
    if (old) this.remove(old);
    const svc = this.services.get(id);
    if (!svc) { this.fragments.delete(id); return; }
    const f = renderService(svc, this.sliceList(id), this.node);
    this.fragments.set(id, f);
    this.add(f);
  }

  private renderWhole(): void {
    for (const m of PROXY_MAPS) this.plan.elements[m].clear();
    this.plan.counts.clear();
    this.plan.affinityTimeouts.clear();
    this.fragments.clear();
    this.counts = new Counter();
    this.timeouts = new Counter();
    this.local = new Counter();
    this.clashes = 0;
    for (const id of [...this.services.keys()].sort()) {
      const f = renderService(this.services.get(id)!, this.sliceList(id), this.node);
      this.fragments.set(id, f);
      this.add(f);
    }
    this.dirty.clear();
    this.touched = emptyTouched();
    this.wholeNeeded = false;
  }

  private add(f: ServiceFragment): void {
    const { elements } = this.plan;
    for (const [m, k, v] of f.elements) {
      if (elements[m].has(k)) this.clashes++;
      elements[m].set(k, v);
      this.touched[m].add(k);
    }
    for (const c of f.counts) if (this.counts.up(c)) this.plan.counts.add(c);
    for (const t of f.timeouts) if (this.timeouts.up(t)) this.plan.affinityTimeouts.add(t);
    for (const ip of f.localIPs) {
      if (!this.local.up(ip)) continue;
      elements.hairpin.set(hairpinKey(ip), '');
      this.touched.hairpin.add(hairpinKey(ip));
    }
  }

  private remove(f: ServiceFragment): void {
    const { elements } = this.plan;
    for (const [m, k] of f.elements) {
      elements[m].delete(k);
      this.touched[m].add(k);
    }
    for (const c of f.counts) if (this.counts.down(c)) this.plan.counts.delete(c);
    for (const t of f.timeouts) if (this.timeouts.down(t)) this.plan.affinityTimeouts.delete(t);
    for (const ip of f.localIPs) {
      if (!this.local.down(ip)) continue;
      elements.hairpin.delete(hairpinKey(ip));
      this.touched.hairpin.add(hairpinKey(ip));
    }
  }
}
