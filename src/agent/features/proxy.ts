// The service proxy: Services and EndpointSlices in, element diffs of one nft table (flatnet-proxy) out.
// Each change re-renders only its Service (ProxyState); the applier compares only what that touched.
import { serviceId } from '../../api/types.js';
import { ProxyApplier } from '../../dataplane/proxy/apply.js';
import { PROXY_TABLE } from '../../dataplane/proxy/skeleton.js';
import { ProxyState } from '../../dataplane/proxy/state.js';
import { loopFeature, type Feature, type NodeContext } from './feature.js';

export function proxyFeature(ctx: NodeContext): Feature {
  const { ns, nodeName, underlay, config, view, resyncMs, log } = ctx;
  const state = new ProxyState({ nodeName, nodeIPs: [underlay.nodeIP] });
  const clusterCIDR = config.clusterCIDRs.find((c) => !c.includes(':')) ?? config.clusterCIDRs[0];
  const applier = new ProxyApplier(ns, { clusterCIDR, serviceCIDR: config.serviceCIDR });
  let lastFullSync = Date.now();
  return loopFeature({
    name: 'proxy',
    ctx,
    follow(poke) {
      // What the view holds now, then every change after it: nothing can land between the two.
      for (const svc of view.services.values()) state.setService(serviceId(svc.metadata.namespace, svc.metadata.name), svc);
      for (const s of view.endpointSlices.values()) state.setSlice(serviceId(s.metadata.namespace, s.metadata.name), s);
      view.services.onChange((changes) => {
        for (const c of changes) {
          const svc = (c.after ?? c.before)!;
          state.setService(serviceId(svc.metadata.namespace, svc.metadata.name), c.after);
        }
        poke();
      });
      view.endpointSlices.onChange((changes) => {
        for (const c of changes) {
          const slice = (c.after ?? c.before)!;
          state.setSlice(serviceId(slice.metadata.namespace, slice.metadata.name), c.after);
        }
        poke();
      });
    },
    async sync(syncs) {
      // The periodic full sync renders every Service again and reads the table back, undoing any
      // change made behind our back.
      if (Date.now() - lastFullSync >= resyncMs) { applier.forget(); state.invalidate(); lastFullSync = Date.now(); }
      const r = await applier.sync(state.plan, state.take());
      if (r.rebuilt || r.operations > 0) log(`proxy: ${r.rebuilt ? `table ${PROXY_TABLE} written, ${r.operations} elements` : `${r.operations} element changes`}${r.flushed ? `, ${r.flushed} UDP flows flushed` : ''}`);
      // Said once per start, as for routes: a restart that adopted the table shows it wrote nothing.
      else if (syncs === 0) log(`proxy: table ${PROXY_TABLE} adopted as it is, nothing written`);
    },
    cleanup: () => applier.cleanup(),
  });
}
