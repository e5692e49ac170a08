// Leader election on one store key, as kube-controller-manager does with its Lease object: the key is
// created only if absent and lives on the winner's lease, so a leader that dies loses the key within
// one TTL and a leader that stops revokes it for an immediate hand-over. Candidates watch the key and
// try again the moment it is deleted.
import { CONTROLLER_LEADER_KEY } from '../api/keys.js';
import { LeaseLostError } from '../store/errors.js';
import type { KV, Lease, Store } from '../store/store.js';

export interface LeaderElectionOptions {
  store: Store;
  identity: string;
  key?: string;
  /** Lease TTL; default 4 s. The leader renews every third of it. */
  leaseTtlSeconds?: number;
  /** Called when this process becomes leader. */
  onStartedLeading?: () => void;
  /** Called the moment leadership ends (lease lost, renewals failing for a TTL, or stop()). */
  onStoppedLeading?: () => void;
  log?: (msg: string) => void;
}

export class LeaderElector {
  private readonly store: Store;
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly log: (msg: string) => void;
  private lease?: Lease;
  private leading = false;
  /** When the lease was last known alive (granted or renewed): leadership is trusted for one TTL after. */
  private renewedAt = 0;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(private readonly o: LeaderElectionOptions) {
    this.store = o.store;
    this.key = o.key ?? CONTROLLER_LEADER_KEY;
    this.ttlMs = (o.leaseTtlSeconds ?? 4) * 1000;
    this.log = o.log ?? (() => undefined);
    if (!this.key.includes('/') || this.key.endsWith('/')) throw new Error(`leader key "${this.key}" must be a key under a prefix`);
  }

  /** Starts campaigning; resolves after the first attempt, leader or not. */
  async start(): Promise<void> {
    let firstAttempt!: () => void;
    const attempted = new Promise<void>((resolve) => { firstAttempt = resolve; });
    this.loop = this.run(firstAttempt);
    await attempted;
  }

  /** True while this process holds the key and its lease was renewed less than one TTL ago. */
  isLeader(): boolean {
    return this.leading && Date.now() - this.renewedAt < this.ttlMs;
  }

  /** Stops acting, then revokes the lease so another candidate takes over at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wakeUp();
    await this.loop;
  }

  private async run(firstAttempt: () => void): Promise<void> {
    while (!this.stopped) {
      try {
        const won = await this.tryAcquire();
        firstAttempt();
        if (won) await this.lead();
        else await this.waitForVacancy();
      } catch (err) {
        firstAttempt();
        this.log(`leader election: ${(err as Error).message}`);
        await this.sleep(1000);
      }
    }
    firstAttempt();
  }

  private async tryAcquire(): Promise<boolean> {
    const lease = await this.store.grantLease(Math.ceil(this.ttlMs / 1000));
    let won = false;
    try {
      won = await this.store.create(this.key, this.o.identity, { lease });
    } finally {
      if (!won) await lease.revoke().catch(() => undefined);
    }
    if (!won) return false;
    if (this.stopped) { await lease.revoke().catch(() => undefined); return false; }
    this.lease = lease;
    this.renewedAt = Date.now();
    this.leading = true;
    this.o.onStartedLeading?.();
    return true;
  }

  /** Keeps the lease alive until it is lost, the key is taken from us, or stop() is called; then steps down. */
  private async lead(): Promise<void> {
    const lease = this.lease!;
    let keyLost = false;
    // Someone deleting or overwriting the key (an operator, a bug) ends our term too: another candidate may
    // now win. Watched from the revision we read it at, so a change right after our create is not missed.
    let held: KV | undefined;
    let readFailed = false;
    try { held = await this.store.get(this.key); } catch { readFailed = true; }
    if (!readFailed && held?.value !== this.o.identity) keyLost = true;
    const watch = await this.store.watch(this.prefix(), held ? held.modRevision + 1 : 0, {
      onEvents: (events) => {
        if (events.some((e) => e.key === this.key && (e.type === 'delete' || e.value !== this.o.identity))) { keyLost = true; this.wakeUp(); }
      },
      onResync: () => undefined,
    }).catch(() => undefined);
    try {
      while (!this.stopped && !keyLost) {
        await this.sleep(this.ttlMs / 3);
        if (this.stopped || keyLost) break;
        try {
          await lease.keepAlive();
          this.renewedAt = Date.now();
        } catch (err) {
          if (err instanceof LeaseLostError) { this.log('leader lease lost'); break; }
          // The store did not answer: still leader only while the lease may still be alive.
          if (Date.now() - this.renewedAt >= this.ttlMs) { this.log(`cannot renew the leader lease for a TTL: ${(err as Error).message}`); break; }
        }
      }
      if (keyLost) this.log('leader key was deleted or taken');
    } finally {
      this.leading = false;
      this.lease = undefined;
      this.o.onStoppedLeading?.();
      await watch?.cancel().catch(() => undefined);
      // Revoke even after a loss: if the lease is in fact alive, no key of ours may outlive our term.
      await lease.revoke().catch(() => undefined);
    }
  }

  /** Waits until the leader key is deleted (or a TTL passes, as a safety net against a missed event). */
  private async waitForVacancy(): Promise<void> {
    const kv = await this.store.get(this.key);
    if (!kv || this.stopped) return;
    let vacant = false;
    const watch = await this.store.watch(this.prefix(), kv.modRevision + 1, {
      onEvents: (events) => { if (events.some((e) => e.key === this.key && e.type === 'delete')) { vacant = true; this.wakeUp(); } },
      onResync: () => { vacant = true; this.wakeUp(); },
    });
    try {
      if (!vacant) await this.sleep(this.ttlMs);
    } finally {
      await watch.cancel();
    }
  }

  private prefix(): string { return this.key.slice(0, this.key.lastIndexOf('/') + 1); }

  private readonly sleepers = new Set<() => void>();

  private wakeUp(): void { for (const wake of [...this.sleepers]) wake(); }

  /** Sleeps `ms`, or less when woken (by stop() or a watch event). */
  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(timer); this.sleepers.delete(wake); resolve(); };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
