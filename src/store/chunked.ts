// A write set larger than one etcd transaction (MAX_TXN_OPS), committed all-or-nothing as far as a
// store without multi-transaction atomicity allows: chunks in order, each guarded by the same
// conditions the single transaction would have had, and when a later chunk's conditions fail (someone
// wrote meanwhile) the earlier chunks are undone, each undo guarded so it never overwrites a newer write.
// Readers may see the chunks land one after another; a failure leaves the keys as they were.
import { StoreError } from './errors.js';
import { MAX_TXN_OPS, type Store, type TxnOp } from './store.js';

interface Done {
  op: TxnOp;
  /** The key's value before the chunk wrote it; undefined when it did not exist. */
  before: string | undefined;
}

/** Like Store.commit for any number of ops; false (and nothing left written) when a condition fails. */
export async function commitChunked(store: Store, ops: TxnOp[], chunkSize = MAX_TXN_OPS): Promise<boolean> {
  if (ops.length <= chunkSize) return store.commit(ops);
  // A key in two chunks could not be undone to its value before both.
  const keys = new Set(ops.map((o) => o.key));
  if (keys.size !== ops.length) throw new StoreError(`transaction writes a key twice (${ops.length} ops, ${keys.size} keys)`);
  const done: Done[] = [];
  try {
    for (let i = 0; i < ops.length; i += chunkSize) {
      const chunk = ops.slice(i, i + chunkSize);
      const before = await valuesBefore(store, chunk);
      if (!before || !(await store.commit(chunk))) {
        await undo(store, done);
        return false;
      }
      chunk.forEach((op, j) => done.push({ op, before: before[j] }));
    }
    return true;
  } catch (err) {
    await undo(store, done).catch(() => undefined);
    throw err;
  }
}

/**
 * What each op's key holds now, read before its chunk commits. The chunk's own guards (modRevision
 * or absence) make these the exact values it replaces; undefined when a guard already fails.
 */
async function valuesBefore(store: Store, chunk: TxnOp[]): Promise<Array<string | undefined> | undefined> {
  const out: Array<string | undefined> = [];
  for (const op of chunk) {
    if (op.op === 'create') { out.push(undefined); continue; }
    const kv = await store.get(op.key);
    if (op.op !== 'put' && kv?.modRevision !== op.expectModRevision) return undefined;
    out.push(kv?.value);
  }
  return out;
}

/** Restores what committed chunks replaced, newest first; a key someone changed since is left to them. */
async function undo(store: Store, done: Done[]): Promise<void> {
  for (const { op, before } of [...done].reverse()) {
    const now = await store.get(op.key);
    const ours = op.op === 'delete' ? now === undefined : now?.value === op.value;
    if (!ours) continue;
    if (now === undefined) { if (before !== undefined) await store.create(op.key, before); } else if (before === undefined) await store.deleteIf(op.key, now.modRevision);
    else await store.update(op.key, before, now.modRevision);
  }
}
