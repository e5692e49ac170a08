// One assertion for the CNI error contract: the right class, the spec code, a message naming the culprit.
import assert from 'node:assert/strict';
import { CniError } from '../../src/cni/errors.js';

export function throwsCni(fn: () => unknown, code: number, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `not a CniError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" lacks "${f}"`);
    return true;
  });
}

/** throwsCni for an async call: it must reject with the CniError. */
export async function rejectsCni(fn: () => Promise<unknown>, code: number, ...fragments: string[]): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `not a CniError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" lacks "${f}"`);
    return true;
  });
}
