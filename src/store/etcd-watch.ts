// One Store watch on etcd: its own gRPC watch stream (multiplexed on the client's one HTTP/2
// connection), resumed by us after a disconnect.
//
// Why not etcd3's Watcher: it resumes from the last *response header* revision + 1, and the header of
// the "created" response (and of each history batch) carries the store's current revision, not the last
// event's. A watcher that disconnects while history is still being replayed would silently skip the rest
// of it. It also reports compaction only as "Watcher canceled: " with no compact revision. Here `next`
// moves only past events actually delivered, and a compaction arrives with etcd's compact_revision.
import type { Etcd3, IDuplexStream, IEvent, IWatchRequest, IWatchResponse } from 'etcd3';
import { StoreError } from './errors.js';
import type { ResyncNeeded, Watch, WatchEvent, WatchHandlers } from './store.js';
import { observeWatchBatch } from '../metrics/registry.js';

/** The end of a prefix range in etcd's terms: the prefix with its last byte incremented. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) { end[i]++; return end.subarray(0, i + 1); }
  }
  return Buffer.from([0]); // all 0xff: everything after it
}

function toEvent(e: IEvent): WatchEvent {
  const key = e.kv.key.toString();
  const modRevision = Number(e.kv.mod_revision);
  return e.type === 'Delete'
    ? { type: 'delete', key, modRevision }
    : { type: 'put', key, value: e.kv.value.toString(), modRevision, createRevision: Number(e.kv.create_revision) };
}

/**
 * Ends a watch stream we no longer want. etcd 3.4 keeps the server side open after a half-close, so
 * the call must be cancelled; but etcd3 reports a stream error on a still-writable stream to its
 * circuit breaker (CANCELLED counts as a fault, and three open the breaker for 5 s), so half-close first.
 */
function endStream(s: IDuplexStream<IWatchRequest, IWatchResponse>): void {
  s.on('error', () => { /* the CANCELLED we cause */ });
  s.end();
  s.cancel();
}

/** A handler's bug must not look like a broken stream: rethrow it outside the gRPC callback. */
function callHandler(fn: () => void): void {
  try { fn(); } catch (err) { setImmediate(() => { throw err; }); }
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 3000;

export class EtcdWatch implements Watch {
  /** Next revision to deliver; 0 until the server told us what "now" is. */
  private next: number;
  private active = true;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private backoff = MIN_BACKOFF_MS;
  private created: { resolve: () => void; reject: (e: Error) => void } | undefined;

  private constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    fromRevision: number,
    private readonly handlers: WatchHandlers,
    private readonly onEnd: (w: EtcdWatch) => void,
  ) {
    this.next = fromRevision;
  }

  /** Resolves once etcd has registered the watch; rejects if the first attempt fails. */
  static async open(client: Etcd3, prefix: string, fromRevision: number, handlers: WatchHandlers,
    onEnd: (w: EtcdWatch) => void): Promise<EtcdWatch> {
    const w = new EtcdWatch(client, prefix, fromRevision, handlers, onEnd);
    await new Promise<void>((resolve, reject) => {
      w.created = { resolve, reject };
      w.connect();
    });
    return w;
  }

  async cancel(): Promise<void> {
    this.stop();
  }

  private stop(): void {
    if (!this.active) return;
    this.active = false;
    clearTimeout(this.retry);
    const s = this.stream;
    this.stream = undefined;
    if (s) endStream(s);
    this.onEnd(this);
  }

  private connect(): void {
    this.client.watchClient.watch().then((stream) => {
      if (!this.active) return endStream(stream);
      this.stream = stream;
      stream.on('data', (res) => { if (this.stream === stream) this.onResponse(res); });
      stream.on('error', (err) => { if (this.stream === stream) this.onBroken(err); });
      stream.on('end', () => { if (this.stream === stream) this.onBroken(new Error('watch stream ended')); });
      const req: IWatchRequest['create_request'] = { key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix) };
      if (this.next > 0) req.start_revision = this.next;
      stream.write({ create_request: req });
    }, (err: Error) => this.onBroken(err));
  }

  private onResponse(res: IWatchResponse): void {
    if (res.canceled) {
      const compactRevision = Number(res.compact_revision || 0);
      if (this.created && compactRevision === 0) return this.failFirst(new Error(res.cancel_reason || 'canceled at creation'));
      this.created?.resolve();
      this.created = undefined;
      this.stop();
      const message = compactRevision > 0
        ? `watch of "${this.prefix}" needs revision ${this.next}, but history before ${compactRevision} is compacted`
        : `etcd canceled the watch of "${this.prefix}": ${res.cancel_reason || 'no reason given'}`;
      const info: ResyncNeeded = compactRevision > 0
        ? { reason: 'compacted', prefix: this.prefix, compactRevision, message }
        : { reason: 'canceled', prefix: this.prefix, message };
      return callHandler(() => this.handlers.onResync(info));
    }
    if (res.created) {
      // "From now" becomes a concrete revision, so a reconnect resumes exactly here.
      if (this.next === 0) this.next = Number(res.header.revision) + 1;
      this.backoff = MIN_BACKOFF_MS;
      this.created?.resolve();
      this.created = undefined;
      return;
    }
    if (res.events.length === 0) return; // a progress notification
    const events = res.events.map(toEvent);
    this.next = events[events.length - 1].modRevision + 1;
    observeWatchBatch(this.prefix, events.length, Number(res.header?.revision ?? 0), this.next - 1);
    callHandler(() => this.handlers.onEvents(events));
  }

  private onBroken(err: Error): void {
    if (!this.active) return;
    if (this.stream) endStream(this.stream);
    this.stream = undefined;
    if (this.created) return this.failFirst(err);
    // Resume from the first undelivered revision; if that is compacted by then, etcd says so.
    this.retry = setTimeout(() => { this.retry = undefined; if (this.active) this.connect(); }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
  }

  private failFirst(err: Error): void {
    const created = this.created!;
    this.created = undefined;
    this.stop();
    created.reject(new StoreError(`cannot watch "${this.prefix}" from revision ${this.next}: ${err.message}`,
      { key: this.prefix, recoverable: true, cause: err }));
  }
}
