// A cross-process lock without flock (Node has none): an O_EXCL-created file holding the owner's pid,
// stolen when the owner is dead, so a plugin killed while holding it cannot wedge the node. Waiters
// queue on ticket files named by arrival time and wait asynchronously, so the lock is fair and an
// agent waiting for it keeps serving its heartbeat, watches and proxy.
import { closeSync, existsSync, fstatSync, linkSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CniCode, CniError } from '../cni/errors.js';

/** An empty or garbled lock (owner died between create and write, or host-local's leftover) is stale after this. */
export const EMPTY_LOCK_STALE_MS = 2_000;
/** A lock whose pid was reused by an unrelated live process would never free; no holder keeps it this long. */
export const MAX_LOCK_AGE_MS = 30_000;
/** 100 concurrent ADDs on 2 busy cores kept a waiter out for over 10 s; a runtime waits longer than this. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** The wait a store uses unless told otherwise (a test of what a timeout answers sets it lower). */
export const lockDefaults = { timeoutMs: DEFAULT_LOCK_TIMEOUT_MS };
const STALE_CHECK_INTERVAL_MS = 250;

/** How often a waiter checks that the one ahead of it is still alive. */
const AHEAD_CHECK_INTERVAL_MS = 250;
/** A waiter far back counts the queue at least this often (counting reads the whole directory). */
const MAX_COUNT_INTERVAL_MS = 1_000;
/** Queue files sit beside the lock; the store's temp-file sweep leaves them alone. */
export const QUEUE_PREFIX = '.lockq-';
const TICKET_DIGITS = 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) !== 'ESRCH'; // EPERM: alive, just not ours
  }
}

/** A ticket's waiter lives while its pid does (the pid is the name's last part). */
export function ticketAlive(ticket: string): boolean {
  const pid = Number(ticket.slice(ticket.lastIndexOf('-') + 1));
  return !Number.isInteger(pid) || pid <= 0 || pidAlive(pid);
}

function tryUnlink(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
}

export const randomSuffix = (): string => `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

interface Held { fd: number; ino: number; dev: number }

export class FileLock {
  private held: Held | undefined;

  constructor(readonly path: string, private readonly timeoutMs = lockDefaults.timeoutMs) {}

  /**
   * Waits its turn, first come first served, then takes the lock; TryAgainLater after the timeout.
   * Waiting never blocks the event loop (an agent serving CNI also runs heartbeats and watches).
   * Every waiter holds a ticket file; only the lowest ticket tries for the lock, so a
   * crowd cannot starve one of them (300 spinning waiters once kept 8 out for 60 s). A waiter only
   * watches the ticket just ahead of it, and removes it when its process is dead.
   */
  async acquire(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    const dir = dirname(this.path);
    const mine = this.takeTicket(dir);
    try {
      await this.waitTurn(dir, mine, deadline);
      await this.takeLockAsHead(deadline);
    } finally {
      tryUnlink(join(dir, mine));
    }
  }

  /**
   * Until no live ticket is ahead of `mine`. The next in line watches the ticket ahead of it every
   * millisecond; one further back sleeps half the time the queue took to move that far so far, then
   * counts again (300 waiters polling every few ms would starve the holder of CPU, and one that
   * sleeps too long leaves the lock idle). Each waiter checks only the ticket just ahead for a dead owner.
   */
  private async waitTurn(dir: string, mine: string, deadline: number): Promise<void> {
    let nextCheck = Date.now() + AHEAD_CHECK_INTERVAL_MS;
    let msPerPlace = 1;
    let last: { place: number; at: number } | undefined;
    for (;;) {
      const ahead = this.tickets(dir).filter((n) => n < mine);
      if (ahead.length === 0) return;
      const now = Date.now();
      if (now >= deadline) throw this.timedOut();
      if (last && last.place > ahead.length) msPerPlace = (now - last.at) / (last.place - ahead.length);
      last = { place: ahead.length, at: now };
      const prev = join(dir, ahead[ahead.length - 1]);
      if (now >= nextCheck) {
        nextCheck = now + AHEAD_CHECK_INTERVAL_MS;
        if (!ticketAlive(prev)) { tryUnlink(prev); nextCheck = 0; continue; } // and the one before it at once
      }
      if (ahead.length > 1) {
        await sleep(Math.min(Math.max(((ahead.length - 1) * msPerPlace) / 2, 1), MAX_COUNT_INTERVAL_MS, deadline - now));
        continue;
      }
      while (existsSync(prev) && Date.now() < deadline && Date.now() < nextCheck) await sleep(1);
    }
  }

  private timedOut(): CniError {
    const waiting = this.tickets(dirname(this.path)).length;
    return new CniError(CniCode.TryAgainLater,
      `IPAM lock ${this.path} still held by ${this.describeOwner()} after ${this.timeoutMs} ms (${waiting} waiting, this one included)`);
  }

  /**
   * A ticket named by the time it was taken: CLOCK_MONOTONIC is one clock for every process on the
   * host, so names sort in arrival order without reading the queue (300 waiters reading it to pick a
   * number cost seconds). "<prefix><nanoseconds>-<pid>", created exclusively.
   */
  private takeTicket(dir: string): string {
    for (;;) {
      const name = `${QUEUE_PREFIX}${process.hrtime.bigint().toString().padStart(TICKET_DIGITS, '0')}-${process.pid}`;
      try {
        closeSync(openSync(join(dir, name), 'wx', 0o600));
        return name;
      } catch (err) {
        if (errCode(err) === 'EEXIST') continue; // the same nanosecond in this process: take the next
        throw new CniError(CniCode.NotAvailable,
          `IPAM data directory ${dir} is not usable: cannot create ${join(dir, name)}: ${(err as Error).message}`);
      }
    }
  }

  /** Queue files in ticket order (fixed-width numbers sort as text). */
  private tickets(dir: string): string[] {
    return readdirSync(dir).filter((n) => n.startsWith(QUEUE_PREFIX)).sort();
  }

  /** First in line: the holder's lock file goes, or is stale, and ours is made. */
  private async takeLockAsHead(deadline: number): Promise<void> {
    let nextStaleCheck = 0;
    for (;;) {
      // access() is one cheap syscall; a failing O_EXCL open costs a thrown error.
      if (!existsSync(this.path) && this.tryCreate()) return;
      // Judging staleness costs several syscalls: do it at once (a dead holder's lock goes fast), then seldom.
      if (Date.now() >= nextStaleCheck) {
        nextStaleCheck = Date.now() + STALE_CHECK_INTERVAL_MS;
        if (this.stealIfStaleOrFail()) continue;
      }
      if (Date.now() >= deadline) throw this.timedOut();
      await sleep(1); // the holder's critical section is a few file operations
    }
  }

  /** Removes the lock only if it is still the file we created (a stealer may have replaced it). */
  release(): void {
    const h = this.held;
    if (!h) return;
    this.held = undefined;
    try {
      const st = statSync(this.path);
      if (st.ino === h.ino && st.dev === h.dev) unlinkSync(this.path);
    } catch { /* already gone */ }
    closeSync(h.fd);
  }

  private tryCreate(): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, 'wx', 0o600);
    } catch (err) {
      if (errCode(err) === 'EEXIST') return false;
      throw new CniError(CniCode.NotAvailable,
        `IPAM data directory ${dirname(this.path)} is not usable: cannot create ${this.path}: ${(err as Error).message}`);
    }
    try {
      writeSync(fd, String(process.pid));
      const st = fstatSync(fd);
      this.held = { fd, ino: st.ino, dev: st.dev };
      return true;
    } catch (err) {
      closeSync(fd);
      try { unlinkSync(this.path); } catch { /* an empty lock is stolen after EMPTY_LOCK_STALE_MS anyway */ }
      throw new CniError(CniCode.NotAvailable, `IPAM lock ${this.path}: cannot write it: ${(err as Error).message}`);
    }
  }

  /** Reads owner pid and identity from one open file, so both describe the same lock. */
  private inspect(): { pid?: number; text: string; ino: number; dev: number; ageMs: number } | undefined {
    let fd: number;
    try { fd = openSync(this.path, 'r'); } catch { return undefined; }
    try {
      const st = fstatSync(fd);
      const buf = Buffer.alloc(32);
      const text = buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0)).trim();
      const pid = /^[1-9]\d{0,9}$/.test(text) ? Number(text) : undefined;
      return { pid, text, ino: st.ino, dev: st.dev, ageMs: Date.now() - st.mtimeMs };
    } finally {
      closeSync(fd);
    }
  }

  private describeOwner(): string {
    const o = this.inspect();
    if (!o) return 'nobody (just released)';
    return o.pid !== undefined ? `pid ${o.pid}` : `an unreadable owner (${JSON.stringify(o.text)})`;
  }

  private stealIfStaleOrFail(): boolean {
    try {
      return this.stealIfStale();
    } catch (err) {
      throw new CniError(CniCode.NotAvailable, `IPAM lock ${this.path}: cannot remove a stale lock: ${(err as Error).message}`);
    }
  }

  /** True when the lock is gone (stolen or released) and creating it should be retried at once. */
  private stealIfStale(): boolean {
    const o = this.inspect();
    if (!o) return true;
    const stale = o.pid !== undefined
      ? !pidAlive(o.pid) || o.ageMs > MAX_LOCK_AGE_MS
      : o.ageMs > EMPTY_LOCK_STALE_MS;
    if (!stale) return false;
    // Move it aside first, then check it is the file we judged stale: unlinking by name could hit a new owner's lock.
    const aside = join(dirname(this.path), `.lock-stale-${randomSuffix()}`);
    try {
      renameSync(this.path, aside);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return true;
      throw err;
    }
    let moved;
    try {
      moved = statSync(aside);
    } catch {
      return true; // swept meanwhile by a lock holder's temp-file cleanup: it was old, hence stale
    }
    if (moved.ino !== o.ino || moved.dev !== o.dev) {
      // Another stealer won and a new owner took the lock meanwhile: put theirs back (EEXIST: someone holds it anyway).
      try { linkSync(aside, this.path); } catch { /* see above */ }
      unlinkSync(aside);
      return false;
    }
    unlinkSync(aside);
    return true;
  }
}
