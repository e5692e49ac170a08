// Where reservations live: the allocator only speaks this interface, so it runs on disk and in memory alike.
import type { Attachment } from './types.js';

/** One reserved address and who holds it, as read back from the store. */
export interface Reservation {
  ip: string;
  /** Undefined when the holder cannot be read (empty/garbled file) or is a legacy id-only record. */
  attachment?: Attachment;
  /** Set for legacy records that name only the container (older host-local wrote no ifname). */
  legacyContainerId?: string;
}

export interface IpamStore {
  /**
   * Runs fn while holding the store's lock: exclusive across processes, granted in arrival order.
   * Waiting is asynchronous (the agent's event loop goes on); fn itself is synchronous, so the
   * critical section cannot interleave with other work. Re-entrant within one store.
   */
  withLock<T>(fn: () => T): Promise<T>;
  /** Records `ip` for `a`; false when already taken. Also records it as last reserved for that range set. */
  reserve(ip: string, a: Attachment, rangeSetIndex: number): boolean;
  lastReserved(rangeSetIndex: number): string | undefined;
  findByAttachment(a: Attachment): string[];
  /** Returns the released addresses; idempotent. */
  releaseByAttachment(a: Attachment): string[];
  releaseIp(ip: string): boolean;
  list(): Reservation[];
  /** Throws CniError(NotAvailable) naming the directory when it cannot be created or written. */
  checkWritable(): void;
}

/** host-local's record: "<containerId>\r\n<ifname>". */
export const formatRecord = (a: Attachment): string => `${a.containerId}\r\n${a.ifname}`;

/** Reads a record as host-local does (whitespace trimmed); legacy records hold only the container id. */
export function parseRecord(ip: string, text: string): Reservation {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  if (lines.length === 1 && lines[0]) return { ip, legacyContainerId: lines[0] };
  if (lines.length === 2 && lines[0] && lines[1]) return { ip, attachment: { containerId: lines[0], ifname: lines[1] } };
  return { ip };
}

export const holdsExactly = (r: Reservation, a: Attachment): boolean =>
  r.attachment !== undefined && r.attachment.containerId === a.containerId && r.attachment.ifname === a.ifname;

/**
 * What `a` holds, as host-local decides it: records naming exactly `a`; only when there are none,
 * legacy id-only records of its container (they cannot say which interface they were for).
 */
export function addressesOf(records: Reservation[], a: Attachment): string[] {
  const exact = records.filter((r) => holdsExactly(r, a));
  const found = exact.length ? exact : records.filter((r) => r.legacyContainerId === a.containerId);
  return found.map((r) => r.ip);
}

/** How an error message names a holder. */
export function describeHolder(r: Reservation | undefined): string {
  if (r?.attachment) return `${r.attachment.containerId}/${r.attachment.ifname}`;
  if (r?.legacyContainerId) return `${r.legacyContainerId} (legacy record without ifname)`;
  return 'an unreadable record';
}
