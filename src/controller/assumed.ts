// A mirror plus the writes this controller made that the mirror has not shown yet (client-go's
// "expectations", kube-scheduler's "assume"). Decisions read through it, so a watch that lags one sync
// behind never makes a deployment's pods twice or piles pods onto one node.
import type { Mirror } from '../store/mirror.js';

interface PendingWrite<T> {
  /** undefined: we deleted the key. */
  value: T | undefined;
  /** The key's modRevision before our write (undefined: it did not exist); the mirror has caught up once it differs. */
  before: number | undefined;
  at: number;
}

export class AssumedView<T> {
  private readonly pending = new Map<string, PendingWrite<T>>();

  constructor(
    readonly mirror: Mirror<T>,
    /** A pending write the mirror never confirms (a later write undid it) is dropped after this long. */
    private readonly maxAgeMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a successful create or update of `key` made against modRevision `before`. */
  wrote(key: string, value: T, before: number | undefined): void {
    this.pending.set(key, { value, before, at: this.now() });
  }

  /** Records a successful delete of `key`, which had modRevision `before`. */
  deleted(key: string, before: number): void {
    this.pending.set(key, { value: undefined, before, at: this.now() });
  }

  /** Forgets every pending write (a new term as leader starts from what the store says). */
  clear(): void { this.pending.clear(); }

  /** Every object by key, sorted: the mirror's, with our pending writes laid over. */
  entries(): Array<[string, T]> {
    this.settle();
    const out = new Map<string, T>();
    for (const key of this.mirror.keys()) if (!this.pending.has(key)) out.set(key, this.mirror.get(key)!);
    for (const [key, p] of this.pending) if (p.value !== undefined) out.set(key, p.value);
    return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  values(): T[] { return this.entries().map(([, v]) => v); }

  /** One object: our pending write if there is one, else the mirror's. */
  get(key: string): T | undefined {
    this.settle();
    const p = this.pending.get(key);
    return p ? p.value : this.mirror.get(key);
  }

  /** The revision to compare-and-set against; undefined when absent or while a write of ours is unconfirmed. */
  modRevision(key: string): number | undefined {
    this.settle();
    return this.pending.has(key) ? undefined : this.mirror.modRevision(key);
  }

  private settle(): void {
    const now = this.now();
    for (const [key, p] of this.pending) {
      if (this.mirror.modRevision(key) !== p.before || now - p.at > this.maxAgeMs) this.pending.delete(key);
    }
  }
}
