// A local, always-current copy of every object under one prefix (what client-go calls an informer):
// list once, then watch from the listing's revision; when the watch ends (compaction, cancel) list again
// and report the difference, so a consumer never misses a change and never sees one twice.
import type { KV, Store, Watch, WatchEvent } from './store.js';

export interface MirrorChange<T> {
  key: string;
  /** Absent when the key is new. */
  before?: T;
  /** Absent when the key was deleted. */
  after?: T;
}

export class Mirror<T> {
  private readonly items = new Map<string, { value: T; modRevision: number }>();
  private readonly listeners: Array<(changes: MirrorChange<T>[]) => void> = [];
  private watch?: Watch;
  private stopped = false;
  private relisting?: Promise<void>;
  /** Revision the mirror is current at. */
  revision = 0;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    private readonly decode: (kv: { key: string; value: string }) => T,
  ) {}

  /** Called after every batch of changes, with the changes; also after a relist that changed anything. */
  onChange(fn: (changes: MirrorChange<T>[]) => void): this { this.listeners.push(fn); return this; }

  /** Lists and starts watching; resolves when the mirror holds the full listing. */
  async start(): Promise<void> { await this.relist(); }

  get(key: string): T | undefined { return this.items.get(key)?.value; }
  modRevision(key: string): number | undefined { return this.items.get(key)?.modRevision; }
  keys(): string[] { return [...this.items.keys()].sort(); }
  values(): T[] { return this.keys().map((k) => this.items.get(k)!.value); }
  get size(): number { return this.items.size; }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.cancel();
  }

  private emit(changes: MirrorChange<T>[]): void {
    if (changes.length === 0 || this.stopped) return;
    for (const fn of this.listeners) fn(changes);
  }

  private safeDecode(kv: { key: string; value: string }): T | undefined {
    try { return this.decode(kv); } catch { return undefined; /* a value we cannot read counts as absent */ }
  }

  private relist(): Promise<void> {
    this.relisting ??= this.doRelist().finally(() => { this.relisting = undefined; });
    return this.relisting;
  }

  private async doRelist(): Promise<void> {
    await this.watch?.cancel();
    this.watch = undefined;
    const listing = await this.store.list(this.prefix);
    if (this.stopped) return;
    const changes: MirrorChange<T>[] = [];
    const seen = new Set<string>();
    for (const kv of listing.items) {
      seen.add(kv.key);
      const old = this.items.get(kv.key);
      if (old && old.modRevision === kv.modRevision) continue;
      const value = this.safeDecode(kv);
      if (value === undefined) { if (old) { this.items.delete(kv.key); changes.push({ key: kv.key, before: old.value }); } continue; }
      this.items.set(kv.key, { value, modRevision: kv.modRevision });
      changes.push({ key: kv.key, before: old?.value, after: value });
    }
    for (const [key, old] of [...this.items]) {
      if (!seen.has(key)) { this.items.delete(key); changes.push({ key, before: old.value }); }
    }
    this.revision = listing.revision;
    this.watch = await this.store.watch(this.prefix, listing.revision + 1, {
      onEvents: (events) => this.apply(events),
      onResync: () => { if (!this.stopped) void this.relist().catch(() => this.retryRelist()); },
    });
    if (this.stopped) { await this.watch.cancel(); return; }
    this.emit(changes);
  }

  private retryRelist(): void {
    // The store is unreachable: try again shortly; the consumer keeps working from the last copy.
    const t = setTimeout(() => { if (!this.stopped) void this.relist().catch(() => this.retryRelist()); }, 1000);
    t.unref();
  }

  private apply(events: WatchEvent[]): void {
    const changes: MirrorChange<T>[] = [];
    for (const ev of events) {
      const old = this.items.get(ev.key);
      if (ev.type === 'delete') {
        if (old) { this.items.delete(ev.key); changes.push({ key: ev.key, before: old.value }); }
      } else {
        const value = this.safeDecode(ev);
        if (value === undefined) {
          if (old) { this.items.delete(ev.key); changes.push({ key: ev.key, before: old.value }); }
        } else {
          this.items.set(ev.key, { value, modRevision: ev.modRevision });
          changes.push({ key: ev.key, before: old?.value, after: value });
        }
      }
      this.revision = Math.max(this.revision, ev.modRevision);
    }
    this.emit(changes);
  }
}

export const jsonDecode = <T>(kv: KV | { key: string; value: string }): T => JSON.parse(kv.value) as T;
