// The cluster-state Store: what the agent and controller need from etcd, and nothing else.
// Two implementations keep one contract (test/helpers/store-contract.ts): `EtcdStore` (etcd.ts) and
// `MemoryStore` (memory.ts, for unit tests). Keys and values are strings; callers JSON-encode objects.
//
// Revisions are etcd's: one counter for the whole store, bumped once per successful write (a failed
// compare-and-set, a delete of a missing key and a read bump nothing). They fit a JS number: etcd would
// need 2^53 writes to overflow one.
import { StoreError } from './errors.js';

export interface KV {
  key: string;
  value: string;
  /** Revision of the write that created the key (since it last did not exist). */
  createRevision: number;
  /** Revision of the last write to the key: the token for `update` and `deleteIf`. */
  modRevision: number;
  /** Lease the key is attached to, if any. */
  lease?: string;
}

export interface Listing {
  items: KV[];
  /** The store revision the listing is a snapshot of: watch from `revision + 1` to miss nothing. */
  revision: number;
}

export type WatchEvent =
  | { type: 'put'; key: string; value: string; modRevision: number; createRevision: number }
  | { type: 'delete'; key: string; modRevision: number };

/**
 * Why a watch ended on its own. 'compacted': the history it needed is gone (it started, or fell behind,
 * below the compaction revision); 'canceled': the server dropped it for another reason. Either way the
 * caller re-lists and watches again from the listing's revision + 1.
 */
export interface ResyncNeeded {
  reason: 'compacted' | 'canceled';
  /** The prefix the watch covered. */
  prefix: string;
  /** The oldest revision still in history, when known. */
  compactRevision?: number;
  message: string;
}

export interface WatchHandlers {
  /** Events in revision order; all events of one revision arrive in the same call. Never empty. */
  onEvents(events: WatchEvent[]): void;
  /** The watch is over and delivers nothing more; see ResyncNeeded. */
  onResync(info: ResyncNeeded): void;
}

export interface Watch {
  /** Stops delivery; no handler is called after the promise resolves. Idempotent. */
  cancel(): Promise<void>;
}

export interface Lease {
  /** The lease id (etcd's int64 as a decimal string). */
  readonly id: string;
  /** The TTL the server granted, which may exceed the one asked for (etcd's minimum is ~2 s). */
  readonly ttlSeconds: number;
  /** Restarts the TTL once; throws LeaseLostError if the lease already expired or was revoked. */
  keepAlive(): Promise<void>;
  /** Ends the lease now, deleting every key attached to it. A lease already gone is not an error. */
  revoke(): Promise<void>;
}

export interface WriteOptions {
  /** Attach the key to this lease: it is deleted when the lease expires or is revoked. */
  lease?: Lease | string;
}

/**
 * One write of a transaction (Store.commit). 'create', 'update' and 'delete' carry the condition of
 * create, update and deleteIf; 'put' has none.
 */
export type TxnOp =
  | { op: 'create'; key: string; value: string }
  | { op: 'update'; key: string; value: string; expectModRevision: number }
  | { op: 'delete'; key: string; expectModRevision: number }
  | { op: 'put'; key: string; value: string };

export interface Store {
  get(key: string): Promise<KV | undefined>;
  /** Writes unconditionally; returns the new revision. */
  put(key: string, value: string, opts?: WriteOptions): Promise<number>;
  /** Deletes unconditionally; false when the key did not exist. */
  delete(key: string): Promise<boolean>;
  /** Every key under `prefix`, sorted by key. `prefix` must end in '/' (see assertPrefix). */
  list(prefix: string): Promise<Listing>;

  /** Compare-and-set: writes only if the key does not exist; false when it does. */
  create(key: string, value: string, opts?: WriteOptions): Promise<boolean>;
  /** Compare-and-set: writes only if the key's modRevision is still `expectModRevision`. */
  update(key: string, value: string, expectModRevision: number, opts?: WriteOptions): Promise<boolean>;
  /** Compare-and-set: deletes only if the key's modRevision is still `expectModRevision`. */
  deleteIf(key: string, expectModRevision: number): Promise<boolean>;
  /**
   * A transaction: when every op's condition holds, all its writes happen in one new revision (watchers
   * get them in one onEvents call, in op order); otherwise nothing happens and it returns false. Empty
   * `ops` is true and writes nothing. A key may appear once (StoreError otherwise). On etcd, a
   * transaction holds at most --max-txn-ops operations (128 by default): both stores refuse more
   * (MAX_TXN_OPS) with a StoreError, so a caller that would fail on a real etcd fails in unit tests too.
   */
  commit(ops: TxnOp[]): Promise<boolean>;

  /**
   * Delivers every change under `prefix` from `fromRevision` (inclusive) on: first the history, then
   * live changes, in order. Resolves once the watch is registered, so a write made after it resolves
   * is seen even when `fromRevision` is 0 (meaning "from now").
   */
  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch>;
  /** Drops history before `revision`; watches that still need it get onResync('compacted'). */
  compact(revision: number): Promise<void>;

  /** Grants a lease; the server may round the TTL up. */
  grantLease(ttlSeconds: number): Promise<Lease>;

  /** Cancels watches and releases the connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Prefixes end in '/': a raw byte prefix "/nodes/a" would also match "/nodes/ab", and a caller listing
 * node a's pods must never see node ab's. Requiring the slash makes that mistake impossible.
 */
export function assertPrefix(prefix: string): void {
  if (!prefix.endsWith('/')) {
    throw new StoreError(`prefix "${prefix}" must end with "/" (a prefix without it also matches siblings)`, { key: prefix });
  }
}

export function assertKey(key: string): void {
  if (key === '' || key.endsWith('/')) {
    throw new StoreError(`key "${key}" is invalid: it must be non-empty and not end with "/"`, { key });
  }
}

/** etcd's default --max-txn-ops: a real cluster refuses a bigger transaction ("too many operations in txn request"). */
export const MAX_TXN_OPS = 128;

/** Checks a transaction: at most MAX_TXN_OPS ops, keys each valid and none twice (etcd refuses a key twice in one txn). */
export function assertTxn(ops: TxnOp[]): void {
  if (ops.length > MAX_TXN_OPS) {
    throw new StoreError(`transaction of ${ops.length} ops exceeds etcd's limit of ${MAX_TXN_OPS} (--max-txn-ops); split it`, { key: ops[0].key });
  }
  const seen = new Set<string>();
  for (const o of ops) {
    assertKey(o.key);
    if (seen.has(o.key)) throw new StoreError(`transaction writes key "${o.key}" twice`, { key: o.key });
    seen.add(o.key);
  }
}

export const leaseId = (lease: Lease | string | undefined): string | undefined =>
  lease === undefined ? undefined : typeof lease === 'string' ? lease : lease.id;
