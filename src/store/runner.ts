// One sync loop per subsystem, as kube-proxy runs its proxier: watch handlers only `poke()`; the runner
// calls `sync` at most once per `minIntervalMs`, never two at once, retries a failed sync after
// `retryMs`, and syncs every `periodMs` anyway as the safety net against anything missed.
export interface RunnerOptions {
  minIntervalMs?: number;
  retryMs?: number;
  periodMs?: number;
  onError?: (err: unknown) => void;
}

export class SyncRunner {
  private running = false;
  private pending = false;
  private lastStart = 0;
  private timer?: NodeJS.Timeout;
  private periodic?: NodeJS.Timeout;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  /** Completed syncs, failed or not: tests wait on it. */
  syncs = 0;
  lastError: unknown;

  constructor(private readonly sync: () => Promise<void>, private readonly opts: RunnerOptions = {}) {}

  start(): void {
    const period = this.opts.periodMs ?? 30_000;
    if (period > 0) { this.periodic = setInterval(() => this.poke(), period); this.periodic.unref(); }
    this.poke();
  }

  /** Asks for a sync soon; many pokes before it runs make one sync. */
  poke(): void {
    if (this.stopped) return;
    this.pending = true;
    if (this.running || this.timer) return;
    const wait = Math.max(0, this.lastStart + (this.opts.minIntervalMs ?? 100) - Date.now());
    this.timer = setTimeout(() => { this.timer = undefined; void this.run(); }, wait);
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped || !this.pending) return;
    this.pending = false;
    this.running = true;
    this.lastStart = Date.now();
    try {
      await this.sync();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = err;
      this.opts.onError?.(err);
      // Retry later even if nothing else pokes: a failed sync leaves the kernel behind the store.
      const t = setTimeout(() => this.poke(), this.opts.retryMs ?? 1000);
      t.unref();
    } finally {
      this.running = false;
      this.syncs++;
    }
    if (this.pending) this.poke();
    else for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no sync is running or pending (now or after the current one). */
  idle(): Promise<void> {
    if (!this.running && !this.pending && !this.timer) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.periodic) clearInterval(this.periodic);
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
