// Masquerade for pods leaving the cluster: one nft table (flatnet-masq) rendered from this node's pod
// CIDRs and the cluster CIDRs. It follows nothing in the view; the periodic sync undoes outside edits.
import { applyMasq, MASQ_TABLE, renderMasq } from '../../dataplane/masq/index.js';
import { loopFeature, type Feature, type NodeContext } from './feature.js';

export function masqueradeFeature(ctx: NodeContext): Feature {
  const { ns, podCIDRs, config, log } = ctx;
  return loopFeature({
    name: 'masquerade',
    ctx,
    async sync() {
      const r = await applyMasq(ns, renderMasq({ podCIDRs, clusterCIDRs: config.clusterCIDRs }));
      if (r.changed) log(`masquerade: table ${MASQ_TABLE} written`);
    },
    async cleanup() {
      // Nothing wanted: applyMasq removes the table in either family, and writes nothing when none is there.
      const r = await applyMasq(ns, '');
      if (r.changed) log(`masquerade: table ${MASQ_TABLE} removed`);
    },
  });
}
