// The guard: pods send only from their own address, and only nodes send VXLAN (flatnet-guard). Pods
// must not start before it is in place, so start() waits for its first sync. Pod packets arrive on host
// veths (fn<hash>, cni/plan.ts) or the bridge.
import { GuardApplier } from '../../dataplane/guard/apply.js';
import { GUARD_TABLE, guardElements } from '../../dataplane/guard/render.js';
import { BRIDGE } from '../cni-config.js';
import { loopFeature, type Feature, type NodeContext } from './feature.js';

export function guardFeature(ctx: NodeContext): Feature {
  const { ns, config, view, resyncMs, log } = ctx;
  const applier = new GuardApplier(ns, { podInterfaces: ['fn*', BRIDGE], vxlanPort: config.vxlan.port });
  let lastFull = Date.now();
  return loopFeature({
    name: 'guard',
    ctx,
    gatesPods: true,
    follow: (poke) => view.nodes.onChange(poke),
    async sync() {
      // The periodic full sync reads the table back, undoing a change made behind our back.
      if (Date.now() - lastFull >= resyncMs) { applier.forget(); lastFull = Date.now(); }
      const r = await applier.sync(guardElements(view.nodes.values()));
      if (r.rebuilt || r.operations > 0) log(`guard: ${r.rebuilt ? `table ${GUARD_TABLE} written, ` : ''}${r.operations} node address changes`);
    },
    async cleanup() { await applier.cleanup(); },
  });
}
