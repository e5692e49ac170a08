// The Store contract without a server, for unit tests of whatever sits on the store (controller,
// agent). It keeps etcd's semantics where callers can observe them: one revision counter bumped once per
// successful write, a bounded event history that compaction trims (so "fell behind, resync" is testable),
// watch delivery that is asynchronous and in order, and leases whose keys go in one revision when the
// lease ends. Lease time comes from an injected Clock (ManualClock in tests).
import { systemClock, type Clock, type Timer } from './clock.js';
import { LeaseLostError, StoreError } from './errors.js';
import {
  assertKey, assertPrefix, assertTxn, leaseId,
  type KV, type Lease, type Listing, type Store, type TxnOp, type Watch, type WatchEvent, type WatchHandlers, type WriteOptions,
} from './store.js';

export interface MemoryStoreOptions {
  clock?: Clock;
  /** Revisions of history kept; older ones are compacted automatically, as etcd's auto-compaction does. */
  historyLimit?: number;
}

interface Entry {
  value: string;
  createRevision: number;
  modRevision: number;
  lease?: string;
}

interface LeaseState {
  ttlSeconds: number;
  keys: Set<string>;
  timer: Timer;
}

interface Watcher {
  prefix: string;
  /** First revision to deliver: a watch from a future revision skips the writes before it. */
  from: number;
  handlers: WatchHandlers;
  active: boolean;
}

export class MemoryStore implements Store {
  private readonly clock: Clock;
  private readonly historyLimit: number;
  private readonly data = new Map<string, Entry>();
  /** Every event since `compacted`, in revision order. */
  private history: WatchEvent[] = [];
  /** Like etcd, an empty store is at revision 1 and the first write makes revision 2. */
  private rev = 1;
  /** Oldest revision a watch may start from; 0 until the first compaction. */
  private compacted = 0;
  private readonly leases = new Map<string, LeaseState>();
  private nextLeaseId = 0x1000;
  private readonly watchers = new Set<Watcher>();
  private closed = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.historyLimit = opts.historyLimit ?? 10_000;
  }

  /** The current revision (the last write's), as etcd's response headers report it. */
  get revision(): number {
    return this.rev;
  }

  async get(key: string): Promise<KV | undefined> {
    this.check();
    assertKey(key);
    const e = this.data.get(key);
    return e && toKV(key, e);
  }

  async put(key: string, value: string, opts: WriteOptions = {}): Promise<number> {
    this.check();
    this.write(key, value, leaseId(opts.lease));
    return this.rev;
  }

  async delete(key: string): Promise<boolean> {
    this.check();
    assertKey(key);
    if (!this.data.has(key)) return false;
    this.newRevision((rev) => [this.remove(key, rev)]);
    return true;
  }

  async list(prefix: string): Promise<Listing> {
    this.check();
    assertPrefix(prefix);
    const items = [...this.data].filter(([k]) => k.startsWith(prefix)).map(([k, e]) => toKV(k, e));
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items, revision: this.rev };
  }

  async create(key: string, value: string, opts: WriteOptions = {}): Promise<boolean> {
    this.check();
    assertKey(key);
    if (this.data.has(key)) return false;
    this.write(key, value, leaseId(opts.lease));
    return true;
  }

  async update(key: string, value: string, expectModRevision: number, opts: WriteOptions = {}): Promise<boolean> {
    this.check();
    assertKey(key);
    if (this.data.get(key)?.modRevision !== expectModRevision) return false;
    this.write(key, value, leaseId(opts.lease));
    return true;
  }

  async deleteIf(key: string, expectModRevision: number): Promise<boolean> {
    this.check();
    assertKey(key);
    if (this.data.get(key)?.modRevision !== expectModRevision) return false;
    this.newRevision((rev) => [this.remove(key, rev)]);
    return true;
  }

  async commit(ops: TxnOp[]): Promise<boolean> {
    this.check();
    assertTxn(ops);
    if (!ops.every((o) => this.holds(o))) return false;
    if (ops.length === 0) return true;
    this.newRevision((rev) => ops.map((o) => (o.op === 'delete' ? this.remove(o.key, rev) : this.set(o.key, o.value, undefined, rev))));
    return true;
  }

  /** Whether a transaction op's condition holds now. */
  private holds(o: TxnOp): boolean {
    switch (o.op) {
      case 'create': return !this.data.has(o.key);
      case 'update':
      case 'delete': return this.data.get(o.key)?.modRevision === o.expectModRevision;
      case 'put': return true;
    }
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    this.check();
    assertPrefix(prefix);
    const w: Watcher = { prefix, from: fromRevision, handlers, active: true };
    if (fromRevision > 0 && fromRevision < this.compacted) {
      const message = `watch of "${prefix}" from revision ${fromRevision}: history before ${this.compacted} is compacted`;
      queueMicrotask(() => w.active && handlers.onResync({ reason: 'compacted', prefix, compactRevision: this.compacted, message }));
      return { cancel: async () => { w.active = false; } };
    }
    const replay = fromRevision > 0 ? this.history.filter((e) => e.modRevision >= fromRevision && e.key.startsWith(prefix)) : [];
    this.watchers.add(w);
    // Delivered in a microtask, like every later batch, so replay and live events keep their order.
    if (replay.length > 0) this.deliver(w, replay);
    return { cancel: async () => { w.active = false; this.watchers.delete(w); } };
  }

  async compact(revision: number): Promise<void> {
    this.check();
    if (revision > this.rev) throw new StoreError(`cannot compact at revision ${revision}: the store is at ${this.rev}`);
    this.compactTo(revision);
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.check();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new StoreError(`lease TTL ${ttlSeconds} must be a whole number of seconds >= 1`);
    const id = String(this.nextLeaseId++);
    const state: LeaseState = { ttlSeconds, keys: new Set(), timer: this.startTimer(id, ttlSeconds) };
    this.leases.set(id, state);
    return {
      id,
      ttlSeconds,
      keepAlive: async () => {
        this.check();
        const s = this.leases.get(id);
        if (!s) throw new LeaseLostError(id);
        s.timer.cancel();
        s.timer = this.startTimer(id, s.ttlSeconds);
      },
      revoke: async () => { this.check(); this.endLease(id); },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) w.active = false;
    this.watchers.clear();
    for (const l of this.leases.values()) l.timer.cancel();
  }

  private check(): void {
    if (this.closed) throw new StoreError('the memory store is closed');
  }

  private startTimer(id: string, ttlSeconds: number): Timer {
    return this.clock.setTimer(ttlSeconds * 1000, () => this.endLease(id));
  }

  /** Ends a lease: all its keys go in one revision (one delete event each), as etcd's lessor does. */
  private endLease(id: string): void {
    const l = this.leases.get(id);
    if (!l) return;
    this.leases.delete(id);
    l.timer.cancel();
    if (this.closed || l.keys.size === 0) return;
    const keys = [...l.keys].sort();
    this.newRevision((rev) => keys.map((k) => this.remove(k, rev)));
  }

  private write(key: string, value: string, lease: string | undefined): void {
    assertKey(key);
    if (lease !== undefined && !this.leases.has(lease)) {
      throw new StoreError(`cannot write "${key}": lease ${lease} not found (expired or revoked)`, { key });
    }
    this.newRevision((rev) => [this.set(key, value, lease, rev)]);
  }

  private set(key: string, value: string, lease: string | undefined, rev: number): WatchEvent {
    const old = this.data.get(key);
    if (old?.lease !== undefined) this.leases.get(old.lease)?.keys.delete(key);
    if (lease !== undefined) this.leases.get(lease)!.keys.add(key);
    const createRevision = old ? old.createRevision : rev;
    this.data.set(key, { value, createRevision, modRevision: rev, lease });
    return { type: 'put', key, value, modRevision: rev, createRevision };
  }

  private remove(key: string, rev: number): WatchEvent {
    const old = this.data.get(key);
    if (old?.lease !== undefined) this.leases.get(old.lease)?.keys.delete(key);
    this.data.delete(key);
    return { type: 'delete', key, modRevision: rev };
  }

  /** One write = one new revision: applies `fn`, records its events and hands them to the watchers. */
  private newRevision(fn: (rev: number) => WatchEvent[]): void {
    const events = fn(this.rev + 1);
    this.rev++;
    this.history.push(...events);
    this.compactTo(this.rev - this.historyLimit + 1);
    for (const w of this.watchers) {
      const mine = events.filter((e) => e.key.startsWith(w.prefix) && e.modRevision >= w.from);
      if (mine.length > 0) this.deliver(w, mine);
    }
  }

  private compactTo(revision: number): void {
    if (revision <= this.compacted) return;
    this.compacted = revision;
    this.history = this.history.filter((e) => e.modRevision >= revision);
  }

  private deliver(w: Watcher, events: WatchEvent[]): void {
    queueMicrotask(() => { if (w.active) w.handlers.onEvents(events); });
  }
}

function toKV(key: string, e: Entry): KV {
  const kv: KV = { key, value: e.value, createRevision: e.createRevision, modRevision: e.modRevision };
  if (e.lease !== undefined) kv.lease = e.lease;
  return kv;
}
