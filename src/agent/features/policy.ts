// NetworkPolicy: Pods, Namespaces, NetworkPolicies and Nodes in, one nft table (inet flatnet-policy)
// out, and the established flows a change denies cut. The warm CNI ADD waits for its pod's addresses
// to be in the table, so a pod selected by a policy is isolated before its first packet.
import { objectKey } from '../../api/keys.js';
import type { Pod } from '../../api/types.js';
import { parseCniArgs } from '../../cni/env.js';
import { conntrackDelete, conntrackList } from '../../kernel/conntrack.js';
import { NftTableApplier } from '../../dataplane/nft/applier.js';
import { NetnsNftKernel } from '../../dataplane/nft/kernel.js';
import { POLICY_TABLE } from '../../dataplane/policy/render.js';
import { PolicySync, type PolicyKernel } from '../../dataplane/policy/sync.js';
import { ensureBridgeFiltering } from '../../kernel/sysctl.js';
import { evaluateIn, indexWorld } from '../../policy/evaluate.js';
import { loopFeature, type Feature, type NodeContext } from './feature.js';
import { dropLogger } from './policy-droplog.js';

/** How long an ADD waits for the watch to deliver its pod (the kubelet read it from the same store). */
const POD_WAIT_MS = 5_000;

/** "x/a" from CNI_ARGS, or undefined when the caller is not a Kubernetes runtime. */
function podOf(env: Record<string, string>): { namespace: string; name: string } | undefined {
  const args = parseCniArgs(env.CNI_ARGS ?? '');
  const namespace = args.get('K8S_POD_NAMESPACE');
  const name = args.get('K8S_POD_NAME');
  return namespace && name ? { namespace, name } : undefined;
}

/** The addresses of a CNI result (any version's "ips": [{ address: "10.244.1.5/24" }]). */
function resultIPs(result: unknown): string[] {
  const ips = (result as { ips?: Array<{ address?: string }> } | undefined)?.ips ?? [];
  return ips.flatMap((i) => (i.address ? [i.address.split('/')[0]] : []));
}

export function policyFeature(ctx: NodeContext): Feature {
  const { ns, nodeName, config, view, podMode, log } = ctx;
  const applier = new NftTableApplier(new NetnsNftKernel(ns), 'inet', POLICY_TABLE);
  const ipv6 = config.clusterCIDRs.some((c) => c.includes(':'));
  const kernel: PolicyKernel = {
    sync: (t, touched) => applier.sync(t, touched),
    forget: () => applier.forget(),
    cleanup: () => applier.cleanup(),
    async listFlows() {
      const lists = await Promise.all([conntrackList(ns, { family: 'ipv4' }), ...(ipv6 ? [conntrackList(ns, { family: 'ipv6' })] : [])]);
      return lists.flat();
    },
    async deleteFlow(f) { await conntrackDelete(ns, f.protocol, f.orig); },
  };
  const sync = new PolicySync({
    nodeName, ipv6, kernel,
    inputs: { pods: () => view.pods.values(), namespaces: () => view.namespaces.values(), policies: () => view.networkPolicies.values(), nodes: () => view.nodes.values() },
    judge: (world) => { const idx = indexWorld(world); return (q) => evaluateIn(idx, q); },
  });
  // ADDs waiting for the watch to deliver their pod, by store key.
  const waiting = new Map<string, () => void>();
  const podNow = (key: string) => view.pods.get(key);
  async function waitForPod(key: string): Promise<Pod | undefined> {
    if (podNow(key)) return podNow(key);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { waiting.delete(key); resolve(); }, POD_WAIT_MS);
      waiting.set(key, () => { clearTimeout(timer); waiting.delete(key); resolve(); });
    });
    return podNow(key);
  }
  const drops = ctx.dropLogFile ? dropLogger(ctx, ctx.dropLogFile, () => sync.groups()) : undefined;
  let lastFullSync = Date.now();
  const report = (what: string, r: { rebuilt: boolean; operations: number; cut: number; isolated: number }) => {
    if (r.rebuilt || r.operations > 0 || r.cut > 0) {
      log(`policy: ${what}${r.rebuilt ? `table ${POLICY_TABLE} written` : `${r.operations} changes`}, ${r.isolated} isolated pod addresses${r.cut ? `, ${r.cut} flows cut` : ''}`);
    }
  };
  const feature = loopFeature({
    name: 'policy',
    ctx,
    gatesPods: true,
    follow(poke) {
      view.pods.onChange((changes) => {
        for (const c of changes) if (c.after) waiting.get(c.key)?.();
        poke();
      });
      view.namespaces.onChange(() => poke());
      view.networkPolicies.onChange(() => poke());
      view.nodes.onChange(() => poke());
    },
    async sync(syncs) {
      // Bridged pods (IPv6 nodes) reach each other without routing: the bridge must hand them to the table.
      if (syncs === 0 && podMode === 'bridge') await ensureBridgeFiltering(ns);
      // The periodic full sync reads the table back, undoing any change made behind our back.
      if (Date.now() - lastFullSync >= ctx.resyncMs) { applier.forget(); lastFullSync = Date.now(); }
      const r = await sync.sync();
      report('', r);
      // After the table is written: its log rules exist and the reader can name their chains.
      drops?.ensure();
      // Said once per start: a restart that adopted the table shows it wrote nothing.
      if (syncs === 0 && !r.rebuilt && r.operations === 0) log(`policy: table ${POLICY_TABLE} adopted as it is, nothing written`);
    },
    cleanup: () => applier.cleanup(),
    cniHooks: {
      async afterAdd(env, result) {
        const who = podOf(env);
        const ips = resultIPs(result);
        // No policy anywhere: nothing can isolate the pod, and the watch brings its address soon enough.
        if (!who || ips.length === 0 || view.networkPolicies.size === 0) return;
        const key = objectKey('Pod', who.name, who.namespace);
        const pod = await waitForPod(key);
        if (!pod) log(`policy: pod ${who.namespace}/${who.name} not seen within ${POD_WAIT_MS} ms of its ADD; isolated once it is`);
        sync.setPending(`${who.namespace}/${who.name}`, ips, pod);
        report(`pod ${who.namespace}/${who.name} added: `, await sync.sync());
      },
      async afterDel(env) {
        const who = podOf(env);
        if (!who) return;
        sync.dropPending(`${who.namespace}/${who.name}`);
      },
    },
  });
  return { ...feature, async stop() { await feature.stop(); await drops?.stop(); } };
}
