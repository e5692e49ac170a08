// host-local's on-disk layout, so operators' tools keep working: <dataDir>/<network>/<ip> holding
// "<containerId>\r\n<ifname>", last_reserved_ip.<rangeSet>, and a lock file. Every write is atomic.
import {
  linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError } from '../cni/errors.js';
import type { Attachment } from './types.js';
import { canonicalIp } from './addr.js';
import { FileLock, errCode, randomSuffix, lockDefaults, QUEUE_PREFIX, ticketAlive } from './lock.js';
import { addressesOf, formatRecord, parseRecord, type IpamStore, type Reservation } from './store.js';

const LAST_RESERVED = 'last_reserved_ip.';
const LOCK = 'lock';
/** Temp files live this long at most in a live writer; older ones belong to a killed process. */
export const STALE_TEMP_MS = 5_000;

export interface DiskStoreOptions {
  lockTimeoutMs?: number;
}

export class DiskStore implements IpamStore {
  readonly dir: string;
  private readonly lock: FileLock;
  private depth = 0;
  private dirReady = false;

  constructor(dataDir: string, networkName: string, opts: DiskStoreOptions = {}) {
    this.dir = join(dataDir, networkName);
    this.lock = new FileLock(join(this.dir, LOCK), opts.lockTimeoutMs ?? lockDefaults.timeoutMs);
  }

  async withLock<T>(fn: () => T): Promise<T> {
    if (this.depth > 0) {
      this.depth++;
      try { return fn(); } finally { this.depth--; }
    }
    this.ensureDir();
    await this.lock.acquire();
    this.depth = 1;
    try {
      return fn();
    } finally {
      this.depth = 0;
      this.lock.release();
    }
  }

  reserve(ip: string, a: Attachment, rangeSetIndex: number): boolean {
    this.ensureDir();
    const file = join(this.dir, ip);
    // link() publishes the record with its content, and fails with EEXIST when the address is taken.
    const tmp = this.writeTemp(formatRecord(a));
    try {
      linkSync(tmp, file);
    } catch (err) {
      if (errCode(err) === 'EEXIST') return false;
      throw this.ioError(file, err);
    } finally {
      tryUnlink(tmp);
    }
    // The round-robin cursor, written in place as host-local does: it is only a hint (lastReserved
    // reads a torn one as absent), and replacing it by rename costs ~1 ms on ext4 (auto_da_alloc).
    // If it cannot be written the filesystem is failing, so undo the record too.
    const lastFile = join(this.dir, `${LAST_RESERVED}${rangeSetIndex}`);
    try {
      writeFileSync(lastFile, ip, { mode: 0o600 });
    } catch (err) {
      tryUnlink(file);
      throw this.ioError(lastFile, err);
    }
    return true;
  }

  lastReserved(rangeSetIndex: number): string | undefined {
    try {
      return canonicalIp(readFileSync(join(this.dir, `${LAST_RESERVED}${rangeSetIndex}`), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  findByAttachment(a: Attachment): string[] {
    return addressesOf(this.list(), a);
  }

  releaseByAttachment(a: Attachment): string[] {
    return this.findByAttachment(a).filter((ip) => this.releaseIp(ip));
  }

  releaseIp(ip: string): boolean {
    try {
      unlinkSync(join(this.dir, ip));
      return true;
    } catch (err) {
      if (errCode(err) === 'ENOENT') return false;
      throw this.ioError(join(this.dir, ip), err);
    }
  }

  list(): Reservation[] {
    const out: Reservation[] = [];
    for (const ip of this.scan()) {
      let text: string;
      try {
        text = readFileSync(join(this.dir, ip), 'utf8');
      } catch (err) {
        if (errCode(err) === 'ENOENT') continue; // released meanwhile (we may not hold the lock)
        out.push({ ip });
        continue;
      }
      out.push(parseRecord(ip, text));
    }
    return out;
  }

  checkWritable(): void {
    this.ensureDir();
    const probe = join(this.dir, `.probe-${randomSuffix()}`);
    try {
      writeFileSync(probe, '');
      unlinkSync(probe);
    } catch (err) {
      throw notAvailable(this.dir, err);
    }
  }

  /** Names of reservation files; as lock holder also sweeps temp files that killed writers left. */
  private scan(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return [];
      throw this.ioError(this.dir, err);
    }
    const ips: string[] = [];
    const now = Date.now();
    for (const name of names) {
      if (name === LOCK || name.startsWith(LAST_RESERVED)) continue;
      if (name.startsWith(QUEUE_PREFIX)) {
        // A waiter's place in line, however long it waits; a killed waiter's goes.
        if (this.depth > 0 && !ticketAlive(name)) tryUnlink(join(this.dir, name));
        continue;
      }
      if (name.startsWith('.')) {
        if (this.depth > 0) this.sweepIfStale(join(this.dir, name), now);
        continue;
      }
      if (isRecordName(name)) ips.push(name);
    }
    return ips;
  }

  private sweepIfStale(path: string, now: number): void {
    try {
      if (now - statSync(path).mtimeMs > STALE_TEMP_MS) unlinkSync(path);
    } catch { /* gone already */ }
  }

  private writeTemp(content: string): string {
    const tmp = join(this.dir, `.tmp-${randomSuffix()}`);
    try {
      writeFileSync(tmp, content, { flag: 'wx', mode: 0o600 }); // host-local's mode
    } catch (err) {
      tryUnlink(tmp);
      throw this.ioError(tmp, err);
    }
    return tmp;
  }

  private ensureDir(): void {
    if (this.dirReady) return;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw notAvailable(this.dir, err);
    }
    this.dirReady = true;
  }

  private ioError(path: string, err: unknown): CniError {
    return new CniError(CniCode.NotAvailable, `IPAM store ${path}: ${(err as Error).message}`, '', { cause: err });
  }
}

function notAvailable(dir: string, err: unknown): CniError {
  return new CniError(CniCode.NotAvailable,
    `IPAM data directory ${dir} cannot be created or written: ${(err as Error).message}`, '', { cause: err });
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Record files are named by canonical addresses; a regex settles IPv4 cheaply (this runs per file, per ADD). */
function isRecordName(name: string): boolean {
  if (DOTTED_QUAD.test(name)) return true;
  return name.includes(':') && canonicalIp(name) === name;
}

function tryUnlink(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
}
