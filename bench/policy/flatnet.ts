// flatnet's side: the policy renderer and the nft table applier, driven as the agent drives them. Each
// figure is render + apply (the agent's time from the change to the kernel holding it): full sync into
// an empty node, then one policy added, one pod added (its address in the sets), one label changed.
import { performance } from 'node:perf_hooks';
import { Netns } from '../../src/kernel/netns.js';
import { NftTableApplier } from '../../src/dataplane/nft/applier.js';
import { NetnsNftKernel } from '../../src/dataplane/nft/kernel.js';
import { renderTable, type NftTable } from '../../src/dataplane/nft/model.js';
import { POLICY_TABLE } from '../../src/dataplane/policy/render.js';
import { PolicyRenderer, renderPolicy } from '../../src/dataplane/policy/renderer.js';
import { touchedSince } from '../../src/dataplane/policy/sync.js';
import { percentile } from '../cni/stats.js';
import { ADDED_POD_INDEX, podIP, withLabel, withPod, withPolicy, type PolicyWorld } from './world.js';

/** What the bench needs of flatnet's policy dataplane for one node netns. */
export interface FlatnetNode {
  /** render + apply of `world`, as the agent's PolicySync does it (the flow cut after it is not timed). */
  sync(world: PolicyWorld): Promise<{ renderMs: number; applyMs: number; operations: number; rebuilt: boolean }>;
  /** Removes the table and forgets it (the next sync starts from an empty node). */
  reset(): Promise<void>;
  /** Whether the kernel's table holds `address` in some set or map (read back, untimed). */
  holds(address: string): Promise<boolean>;
  /** Size of the table `world` renders to. */
  size(world: PolicyWorld): TableSize;
  /** One `nft -f` that changes nothing (`add table` of the existing table): the floor of any sync at this size. */
  noop(): Promise<void>;
  /** One `nft -f` adding and deleting one map element (nft loads its cache of the table for it). */
  element(): Promise<void>;
}

export interface TableSize { chains: number; sets: number; elements: number; scriptKB: number }

/** Stop repeating a figure once its samples add up to this. */
const REPEAT_BUDGET_MS = 3000;

export interface Timing { ms: number; renderMs: number; ops: number; samples: number[] }

/** Untimed rounds of a change and its undo before timing it: the agent is a long-lived process, its code paths compiled. */
const WARM_ROUNDS = 2;

async function toggled(repeat: number, toBase: () => Promise<unknown>, toTarget: () => ReturnType<FlatnetNode['sync']>, warm = WARM_ROUNDS): Promise<Timing> {
  for (let i = 0; i < warm; i++) { await toTarget(); await toBase(); }
  const samples: number[] = [];
  let renderMs: number[] = [];
  let ops = 0;
  while (samples.length < repeat && (samples.length === 0 || samples.reduce((a, b) => a + b, 0) < REPEAT_BUDGET_MS)) {
    if (samples.length > 0) await toBase();
    const t0 = performance.now();
    const r = await toTarget();
    samples.push(performance.now() - t0);
    renderMs.push(r.renderMs);
    ops = r.operations;
  }
  const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  return { ms: med(samples), renderMs: med(renderMs), ops, samples };
}

export interface FlatnetResult {
  full: Timing; policy: Timing; pod: Timing; label: Timing;
  table: TableSize;
  /** Median of 5 `nft -f` transactions that change nothing, with the table loaded. */
  noopMs: number;
  /** Median of 5 `nft -f` transactions of one element added and deleted. */
  elementMs: number;
  /** The added pod's address was found in the kernel's table after its sync. */
  podInSets: boolean;
}

export async function benchFlatnet(node: FlatnetNode, world: PolicyWorld, seed: number, repeat: number): Promise<FlatnetResult> {
  await node.reset();
  const full = await toggled(1, async () => undefined, () => node.sync(world), 0);
  const policy = await toggled(repeat, () => node.sync(world), () => node.sync(withPolicy(world, seed)));
  await node.sync(world);
  const pod = await toggled(repeat, () => node.sync(world), () => node.sync(withPod(world)));
  // Only meaningful when a policy selects the new pod or names it as a peer: with none, nothing holds it.
  const podInSets = world.policies.length === 0 ? true : await node.holds(podIP(ADDED_POD_INDEX));
  await node.sync(world);
  const label = await toggled(repeat, () => node.sync(world), () => node.sync(withLabel(world)));
  await node.sync(world);
  const floor = async (fn: () => Promise<void>) => {
    const ms: number[] = [];
    for (let i = 0; i < 5; i++) { const t0 = performance.now(); await fn(); ms.push(performance.now() - t0); }
    return percentile(ms.sort((a, b) => a - b), 50);
  };
  return { full, policy, pod, label, podInSets, table: node.size(world), noopMs: await floor(() => node.noop()), elementMs: await floor(() => node.element()) };
}

/** flatnet's renderer and applier on the nft of the netns at `netnsPath`, as the agent's policy feature (PolicySync) wires them. */
export function flatnetNode(netnsPath: string): FlatnetNode {
  const kernel = new NetnsNftKernel(new Netns(netnsPath));
  const render = (world: PolicyWorld) => renderPolicy({ nodeName: world.nodes[0].metadata.name, pods: world.pods, namespaces: world.namespaces, policies: world.policies, ipv6: false });
  let applier = new NftTableApplier(kernel, 'inet', POLICY_TABLE);
  // The agent's renderer keeps each policy's part between renders and renders again what a change touches.
  let renderer = new PolicyRenderer();
  // As PolicySync does: only the sets the renderer made anew are compared with what was written.
  let last: NftTable | undefined;
  return {
    async sync(world) {
      const t0 = performance.now();
      const table = renderer.render({ nodeName: world.nodes[0].metadata.name, pods: world.pods, namespaces: world.namespaces, policies: world.policies, ipv6: false });
      const t1 = performance.now();
      const r = await applier.sync(table, last && touchedSince(last, table));
      last = table;
      return { renderMs: t1 - t0, applyMs: performance.now() - t1, operations: r.operations, rebuilt: r.rebuilt };
    },
    async reset() {
      await applier.cleanup();
      applier = new NftTableApplier(kernel, 'inet', POLICY_TABLE);
      renderer = new PolicyRenderer();
      last = undefined;
    },
    size(world) {
      const t = render(world);
      return { chains: t.blocks.filter((b) => b.kind === 'chain').length, sets: t.blocks.filter((b) => b.kind !== 'chain').length,
        elements: [...t.elements.values()].reduce((n, e) => n + e.size, 0), scriptKB: Buffer.byteLength(renderTable(t)) / 1024 };
    },
    noop: () => kernel.apply(`add table inet ${POLICY_TABLE}\n`),
    element: () => kernel.apply(`add element inet ${POLICY_TABLE} ingress { 10.255.255.254 : drop }\ndelete element inet ${POLICY_TABLE} ingress { 10.255.255.254 }\n`),
    async holds(address) {
      const text = await kernel.listTable('inet', POLICY_TABLE);
      return text !== undefined && new RegExp(`(^|[^0-9.])${address.replace(/\./g, '\\.')}([^0-9.]|$)`, 'm').test(text);
    },
  };
}
