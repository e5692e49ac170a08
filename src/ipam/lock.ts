// A cross-process lock without flock (Node has none): an O_EXCL-created file holding the owner's pid,
// stolen when the owner is dead, so a plugin killed while holding it cannot wedge the node.
import { closeSync, existsSync, fstatSync, linkSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CniCode, CniError } from '../cni/errors.js';

/** An empty or garbled lock (owner died between create and write, or host-local's leftover) is stale after this. */
export const EMPTY_LOCK_STALE_MS = 2_000;
/** A lock whose pid was reused by an unrelated live process would never free; no holder keeps it this long. */
export const MAX_LOCK_AGE_MS = 30_000;
/** 100 concurrent ADDs on 2 busy cores kept a waiter out for over 10 s; a runtime waits longer than this. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
const STALE_CHECK_INTERVAL_MS = 250;
const MAX_SPIN_MS = 50;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms: number) => { Atomics.wait(sleeper, 0, 0, ms); };

export const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) !== 'ESRCH'; // EPERM: alive, just not ours
  }
}

export const randomSuffix = (): string => `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

interface Held { fd: number; ino: number; dev: number }

export class FileLock {
  private held: Held | undefined;

  constructor(readonly path: string, private readonly timeoutMs = DEFAULT_LOCK_TIMEOUT_MS) {}

  /** Spins with a short, growing, jittered sleep until the lock is ours; TryAgainLater after the timeout. */
  acquire(): void {
    const deadline = Date.now() + this.timeoutMs;
    let delay = 1;
    let nextStaleCheck = 0;
    for (;;) {
      // access() is one cheap syscall; a failing O_EXCL open costs a thrown error, and many waiters spin here.
      if (!existsSync(this.path) && this.tryCreate()) return;
      // Judging staleness costs several syscalls: do it at once (a dead holder's lock goes fast), then seldom.
      if (Date.now() >= nextStaleCheck) {
        nextStaleCheck = Date.now() + STALE_CHECK_INTERVAL_MS;
        if (this.stealIfStaleOrFail()) continue;
      }
      if (Date.now() >= deadline) {
        throw new CniError(CniCode.TryAgainLater,
          `IPAM lock ${this.path} still held by ${this.describeOwner()} after ${this.timeoutMs} ms`);
      }
      sleepMs(delay * (0.5 + Math.random()));
      // 1-5 ms covers a node's usual handful of concurrent ADDs; a long wait means a crowd, whose
      // wake-ups alone (~50 us each) would starve the holder of CPU, so back off further.
      delay = delay < 5 ? delay + 1 : Math.min(delay * 1.5, MAX_SPIN_MS);
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
