// One poll helper for every test: wait on a condition, never on a fixed sleep.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `fn` every `intervalMs` until it returns something other than undefined or false, and returns
 * that; fails the test naming `what` after `timeoutMs`.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
