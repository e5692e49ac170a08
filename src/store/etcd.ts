// The Store on etcd v3 through the etcd3 client's raw gRPC calls (KV, Lease, Watch): every operation is
// one request, so what the contract promises is what etcd promises, with no client-side cache between.
//
// Endpoints are what grpc-js dials: "unix:///abs/path" for a unix socket, "host:port" for TCP.
import { Etcd3, isRecoverableError, EtcdLeaseInvalidError, type ICompare, type IKeyValue, type IOptions, type IRequestOp } from 'etcd3';
import { EtcdWatch, prefixEnd } from './etcd-watch.js';
import { LeaseLostError, StoreError } from './errors.js';
import {
  assertKey, assertPrefix, assertTxn, leaseId,
  type KV, type Lease, type Listing, type Store, type TxnOp, type Watch, type WatchHandlers, type WriteOptions,
} from './store.js';

export interface EtcdStoreOptions {
  /** One endpoint or several of the same cluster. */
  endpoints: string | string[];
  /** Passed through to the etcd3 client (credentials, fault handling, call options). */
  client?: Omit<IOptions, 'hosts'>;
  /** Keys per range request when listing: one reply stays well below grpc-js's 4 MiB receive limit. */
  listPageSize?: number;
  /** How long a lease keep-alive may take before it counts as failed. */
  keepAliveTimeoutMs?: number;
}

const toBuf = (s: string): Buffer => Buffer.from(s);

function toKV(kv: IKeyValue): KV {
  const out: KV = {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
  };
  if (kv.lease && kv.lease !== '0') out.lease = kv.lease;
  return out;
}

/** Wraps an etcd3 error: the message names the operation and key, `recoverable` says retry later. */
function fail(op: string, key: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  return new StoreError(`etcd ${op} "${key}": ${e.message}`, { key, recoverable: isRecoverableError(e), cause: e });
}

export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly pageSize: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  constructor(opts: EtcdStoreOptions) {
    this.client = new Etcd3({
      ...opts.client,
      hosts: opts.endpoints,
      // grpc-js refuses replies over 4 MiB by default, and a watch batch (etcd replays up to 1000
      // revisions per reply, unfragmented) can exceed that; a refused reply would break the stream
      // again at every reconnect.
      grpcOptions: { 'grpc.max_receive_message_length': 64 << 20, ...opts.client?.grpcOptions },
    });
    this.pageSize = opts.listPageSize ?? 1000;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? 5000;
  }

  async get(key: string): Promise<KV | undefined> {
    assertKey(key);
    const res = await this.call('get', key, () => this.client.kv.range({ key: toBuf(key) }));
    return res.kvs.length > 0 ? toKV(res.kvs[0]) : undefined;
  }

  async put(key: string, value: string, opts: WriteOptions = {}): Promise<number> {
    assertKey(key);
    const res = await this.call('put', key, () => this.client.kv.put(this.putOp(key, value, opts)));
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    const res = await this.call('delete', key, () => this.client.kv.deleteRange({ key: toBuf(key) }));
    return res.deleted !== '0';
  }

  /** Pages through the prefix at one pinned revision, so the pages form one consistent snapshot. */
  async list(prefix: string): Promise<Listing> {
    assertPrefix(prefix);
    const end = prefixEnd(prefix);
    const items: KV[] = [];
    let start = toBuf(prefix);
    let revision = 0;
    for (;;) {
      const res = await this.call('list', prefix, () => this.client.kv.range({
        key: start, range_end: end, limit: this.pageSize, ...(revision > 0 ? { revision } : {}),
      }));
      if (revision === 0) revision = Number(res.header.revision);
      items.push(...res.kvs.map(toKV));
      if (!res.more || res.kvs.length === 0) break;
      start = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    return { items, revision };
  }

  async create(key: string, value: string, opts: WriteOptions = {}): Promise<boolean> {
    assertKey(key);
    // A key that does not exist has create_revision 0.
    return this.txn('create', key, { target: 'Create', create_revision: 0 }, { request_put: this.putOp(key, value, opts) });
  }

  async update(key: string, value: string, expectModRevision: number, opts: WriteOptions = {}): Promise<boolean> {
    assertKey(key);
    return this.txn('update', key, { target: 'Mod', mod_revision: expectModRevision }, { request_put: this.putOp(key, value, opts) });
  }

  async deleteIf(key: string, expectModRevision: number): Promise<boolean> {
    assertKey(key);
    return this.txn('deleteIf', key, { target: 'Mod', mod_revision: expectModRevision }, { request_delete_range: { key: toBuf(key) } });
  }

  /** One etcd txn: a compare per conditional op, and every write in `success`. */
  async commit(ops: TxnOp[]): Promise<boolean> {
    assertTxn(ops);
    if (ops.length === 0) return true;
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    for (const o of ops) {
      if (o.op === 'create') compare.push({ key: toBuf(o.key), result: 'Equal', target: 'Create', create_revision: 0 });
      if (o.op === 'update' || o.op === 'delete') compare.push({ key: toBuf(o.key), result: 'Equal', target: 'Mod', mod_revision: o.expectModRevision });
      success.push(o.op === 'delete' ? { request_delete_range: { key: toBuf(o.key) } } : { request_put: this.putOp(o.key, o.value, {}) });
    }
    const what = ops.length === 1 ? ops[0].key : `${ops[0].key} (+${ops.length - 1} more)`;
    const res = await this.call('commit', what, () => this.client.kv.txn({ compare, success }));
    return res.succeeded;
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    assertPrefix(prefix);
    if (this.closed) throw new StoreError(`cannot watch "${prefix}": the etcd store is closed`, { key: prefix });
    const w = await EtcdWatch.open(this.client, prefix, fromRevision, handlers, (done) => this.watches.delete(done));
    this.watches.add(w);
    return w;
  }

  async compact(revision: number): Promise<void> {
    try {
      await this.client.kv.compact({ revision, physical: true });
    } catch (err) {
      // Compacting at or below an earlier compaction is a no-op for the caller, as in the memory store.
      if (err instanceof Error && /required revision has been compacted/.test(err.message)) return;
      throw fail('compact', `@${revision}`, err);
    }
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new StoreError(`lease TTL ${ttlSeconds} must be a whole number of seconds >= 1`);
    const res = await this.call('grant lease', `ttl=${ttlSeconds}`, () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    const id = res.ID;
    return {
      id,
      ttlSeconds: Number(res.TTL),
      keepAlive: () => this.keepAlive(id),
      revoke: async () => {
        try {
          await this.client.leaseClient.leaseRevoke({ ID: id });
        } catch (err) {
          if (!(err instanceof EtcdLeaseInvalidError)) throw fail('revoke lease', id, err);
        }
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) await w.cancel();
    this.client.close();
  }

  /** One keep-alive round trip on its own stream; etcd answers TTL 0 for a lease that is gone. */
  private async keepAlive(id: string): Promise<void> {
    const stream = await this.call('keep lease alive', id, () => this.client.leaseClient.leaseKeepAlive());
    let timer: NodeJS.Timeout | undefined;
    try {
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        timer = setTimeout(() => reject(new StoreError(`keep-alive of lease ${id} got no answer in ${this.keepAliveTimeoutMs} ms`,
          { key: id, recoverable: true })), this.keepAliveTimeoutMs);
        stream.on('data', resolve);
        stream.on('error', (err) => reject(fail('keep lease alive', id, err)));
        stream.write({ ID: id });
      });
      if (Number(res.TTL) <= 0) throw new LeaseLostError(id);
    } finally {
      clearTimeout(timer);
      stream.on('error', () => { /* the CANCELLED we cause below */ });
      stream.end();
      stream.cancel();
    }
  }

  private putOp(key: string, value: string, opts: WriteOptions) {
    const lease = leaseId(opts.lease);
    return { key: toBuf(key), value: toBuf(value), ...(lease !== undefined ? { lease } : {}) };
  }

  private async txn(op: string, key: string, cmp: { target: 'Create' | 'Mod'; create_revision?: number; mod_revision?: number },
    then: IRequestOp): Promise<boolean> {
    const res = await this.call(op, key, () => this.client.kv.txn({
      compare: [{ key: toBuf(key), result: 'Equal', ...cmp }],
      success: [then],
    }));
    return res.succeeded;
  }

  private async call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError(`etcd ${op} "${key}": the etcd store is closed`, { key });
    try {
      return await fn();
    } catch (err) {
      throw fail(op, key, err);
    }
  }
}
