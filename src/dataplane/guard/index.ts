// The guard's sync loop, wired by the agent: the Nodes it watches in, element diffs of one table out.
import type { Netns } from '../../kernel/netns.js';
import type { Node } from '../../api/types.js';
import { SyncRunner } from '../../store/runner.js';
import { GuardApplier } from './apply.js';
import { guardElements, type GuardSkeletonInputs } from './render.js';

export { GUARD_TABLE } from './render.js';

export interface GuardLoop { poke(): void; idle(): Promise<void>; stop(): void }

export function startGuard(ns: Netns, inputs: GuardSkeletonInputs, nodes: () => Iterable<Node>, opts: { log: (m: string) => void; resyncMs: number }): GuardLoop {
  const applier = new GuardApplier(ns, inputs);
  let lastFull = Date.now();
  const runner = new SyncRunner(async () => {
    // The periodic full sync reads the table back, undoing a change made behind our back.
    if (Date.now() - lastFull >= opts.resyncMs) { applier.forget(); lastFull = Date.now(); }
    const r = await applier.sync(guardElements(nodes()));
    if (r.rebuilt || r.operations > 0) opts.log(`guard: ${r.rebuilt ? 'table flatnet-guard written, ' : ''}${r.operations} node address changes`);
  }, { periodMs: opts.resyncMs, onError: (err) => opts.log(`guard sync failed: ${(err as Error).message}`) });
  runner.start();
  return { poke: () => runner.poke(), idle: () => runner.idle(), stop: () => runner.stop() };
}
