// The ReplicaSet controller's pacing of pod creation: at most BURST_REPLICAS per sync, made in batches
// of 1, 2, 4, ... so a Deployment whose creates all fail (a full store, a bad template) costs one
// failed call, not hundreds; the first batch with a failure ends the sync's creates.

/** Pod creates (or deletes) one Deployment gets per sync: Kubernetes' burstReplicas. */
export const BURST_REPLICAS = 500;

/**
 * Calls `fn(0..count-1)`, batches of doubling size run concurrently, starting at `initial`; stops
 * after a batch in which any call returned false or threw. Returns how many calls succeeded.
 */
export async function slowStartBatch(count: number, fn: (i: number) => Promise<boolean>, initial = 1): Promise<number> {
  let done = 0;
  let succeeded = 0;
  for (let size = Math.min(initial, count); size > 0; size = Math.min(2 * size, count - done)) {
    const results = await Promise.allSettled(Array.from({ length: size }, (_, j) => fn(done + j)));
    done += size;
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
    succeeded += ok;
    const thrown = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (thrown) throw thrown.reason;
    if (ok < size) break;
  }
  return succeeded;
}
