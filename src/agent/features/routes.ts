// Routes to every peer's pod CIDR (host-gw, vxlan or auto), from the Nodes in the view. Always on: a
// node without them reaches no other node's pods.
import { applyRoutes, renderRoutes } from '../../dataplane/routes/index.js';
import { BRIDGE } from '../cni-config.js';
import { ensureLocalRouteSource } from '../bridge.js';
import { nodeViews } from '../views.js';
import { loopFeature, type Feature, type NodeContext } from './feature.js';

export function routesFeature(ctx: NodeContext): Feature {
  const { ns, nodeName, underlay, podCIDRs, config, view, log } = ctx;
  return loopFeature({
    name: 'routes',
    ctx,
    follow: (poke) => view.nodes.onChange(poke),
    async sync(syncs) {
      // Every peer with a Node object is routed; its heartbeat is the controller's business (Ready).
      const views = nodeViews(view.nodes.values());
      const self = views.find((v) => v.name === nodeName);
      const desired = renderRoutes({
        self: { name: nodeName, nodeIP: underlay.nodeIP, nodeIPv6: underlay.nodeIPv6, podCIDRs, ready: true,
          underlay: { ifname: underlay.ifname, cidr: underlay.cidr, cidr6: underlay.cidr6, mtu: underlay.mtu } },
        peers: views.filter((v) => v !== self),
        backend: config.backend,
        vxlan: config.vxlan,
      });
      for (const u of desired.unreachable) log(`route to ${u.peer}: ${u.reason}`);
      const report = await applyRoutes(ns, desired);
      if (ctx.podMode === 'bridge') {
        const local = await ensureLocalRouteSource(ns, BRIDGE, podCIDRs, underlay.nodeIP, underlay.nodeIPv6);
        if (local.length) log(`routes: ${local.join('; ')}`);
      }
      if (report.writes > 0) log(`routes: ${report.summary}`);
      // Said once per start, so a restart that found every route in place shows it wrote nothing.
      else if (syncs === 0) log(`routes: ${desired.routes.length} in place, nothing written`);
    },
    async cleanup() {
      // Nothing wanted: every route of ours (proto 77) and the VTEP go.
      const r = await applyRoutes(ns, { routes: [], neighbors: [], fdb: [], unreachable: [] });
      if (r.writes > 0) log(`routes: removed (${r.summary})`);
    },
  });
}
