// The store's semantics without a filesystem, so allocator tests are fast and need no temp dirs.
import type { Attachment } from './types.js';
import { addressesOf, formatRecord, parseRecord, type IpamStore, type Reservation } from './store.js';

export class MemoryStore implements IpamStore {
  /** ip -> record text, exactly what DiskStore would write into the file. */
  private readonly records = new Map<string, string>();
  private readonly last = new Map<number, string>();
  private depth = 0;
  /** How many times withLock was entered from outside: lets tests assert that work ran locked. */
  lockCount = 0;
  /** When set, checkWritable throws it (the in-memory store is always writable otherwise). */
  unwritable: Error | undefined;

  get locked(): boolean { return this.depth > 0; }

  async withLock<T>(fn: () => T): Promise<T> {
    if (this.depth === 0) this.lockCount++;
    this.depth++;
    try { return fn(); } finally { this.depth--; }
  }

  reserve(ip: string, a: Attachment, rangeSetIndex: number): boolean {
    if (this.records.has(ip)) return false;
    this.records.set(ip, formatRecord(a));
    this.last.set(rangeSetIndex, ip);
    return true;
  }

  lastReserved(rangeSetIndex: number): string | undefined {
    return this.last.get(rangeSetIndex);
  }

  findByAttachment(a: Attachment): string[] {
    return addressesOf(this.list(), a);
  }

  releaseByAttachment(a: Attachment): string[] {
    return this.findByAttachment(a).filter((ip) => this.releaseIp(ip));
  }

  releaseIp(ip: string): boolean {
    return this.records.delete(ip);
  }

  list(): Reservation[] {
    return [...this.records].map(([ip, text]) => parseRecord(ip, text));
  }

  checkWritable(): void {
    if (this.unwritable) throw this.unwritable;
  }

  /** Test hook: every reserved address. */
  ips(): string[] {
    return [...this.records.keys()];
  }

  /** Test hook: a record with arbitrary content (legacy id-only, empty, garbled). */
  putRaw(ip: string, text: string): void {
    this.records.set(ip, text);
  }
}
