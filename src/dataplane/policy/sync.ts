// One node's policy loop: read the cluster, render the table, apply its diff in one transaction, then
// cut the established flows the new state denies. Syncs are serialized: the watch-driven runner and
// the warm CNI ADD (which must see its pod isolated before it returns) both come through here.
import type { Namespace, NetworkPolicy, Node, Pod } from '../../api/types.js';
import type { NftTable } from '../nft/model.js';
import { flowsToCut, type Flow, type FlowJudge } from './cut.js';
import { PolicyRenderer, type DropGroup } from './renderer.js';
import { indexWorld } from './world.js';
import { podAddresses } from '../../policy/addresses.js';

export interface PolicyInputs { pods(): Pod[]; namespaces(): Namespace[]; policies(): NetworkPolicy[]; nodes(): Node[] }

export interface PolicyKernel {
  /** `touched`: the sets whose elements may differ from the last sync, with the keys to compare. */
  sync(table: NftTable, touched?: Map<string, Iterable<string>>): Promise<{ rebuilt: boolean; operations: number }>;
  forget(): void;
  cleanup(): Promise<void>;
  listFlows(): Promise<Flow[]>;
  deleteFlow(flow: Flow): Promise<void>;
}

export interface PolicySyncReport { rebuilt: boolean; operations: number; cut: number; isolated: number }

export interface PolicySyncOptions {
  nodeName: string;
  ipv6: boolean;
  inputs: PolicyInputs;
  kernel: PolicyKernel;
  /** The evaluator over a world: the same semantics the table was rendered from. */
  judge: (world: { pods: Pod[]; namespaces: Namespace[]; policies: NetworkPolicy[]; nodes: Node[] }) => FlowJudge;
}

/** How long a pod the watch has not delivered is trusted from its ADD (a cold DEL may never tell us). */
const PENDING_UNSEEN_MS = 60_000;

/** The pod with the ADD's addresses; the same object while the pod is unchanged, so the renderer keeps its parts. */
const folded = new WeakMap<Pod, { ips: string; pod: Pod }>();
function withIPs(p: Pod, ips: string[]): Pod {
  const hit = folded.get(p);
  if (hit && hit.ips === ips.join(',')) return hit.pod;
  const pod: Pod = { ...p, status: { ...p.status, podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } };
  folded.set(p, { ips: ips.join(','), pod });
  return pod;
}

/**
 * The sets whose elements may have changed since `before`: a set the renderer handed out as the same Map
 * object is unchanged; any other is compared on the keys of both.
 */
export function touchedSince(before: NftTable, after: NftTable): Map<string, Iterable<string>> {
  const out = new Map<string, Iterable<string>>();
  for (const [name, now] of after.elements) {
    const then = before.elements.get(name);
    if (then === now) continue;
    out.set(name, then ? [...new Set([...then.keys(), ...now.keys()])] : now.keys());
  }
  return out;
}

export class PolicySync {
  private readonly pending = new Map<string, { ips: string[]; pod?: Pod; since: number }>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly renderer = new PolicyRenderer();
  /** The last table written: its element Maps, which the renderer hands out again while unchanged. */
  private last?: NftTable;
  /** Flows whose cut failed: tried again next sync even when nothing changed. */
  private cutOwed = false;

  constructor(private readonly o: PolicySyncOptions) {}

  /**
   * A local pod's addresses, known at CNI ADD before the store holds them; `pod` is the object read at
   * ADD, used until the watch delivers it.
   */
  setPending(podKey: string, ips: string[], pod?: Pod): void { this.pending.set(podKey, { ips, pod, since: Date.now() }); }
  dropPending(podKey: string): void { this.pending.delete(podKey); }

  /** The group chains of the last render, by name: what a logged drop's prefix refers to. */
  groups(): ReadonlyMap<string, DropGroup> { return this.renderer.groups; }

  /** Renders and applies; one at a time, in call order. */
  sync(): Promise<PolicySyncReport> {
    const run = this.queue.then(() => this.syncOnce());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The pods with the warm ADD's addresses folded in: what the table and the judge both see. */
  private pods(): Pod[] {
    const pods = this.o.inputs.pods();
    if (this.pending.size === 0) return pods;
    const out: Pod[] = [];
    const seen = new Set<string>();
    for (const p of pods) {
      const key = `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
      const extra = this.pending.get(key);
      seen.add(key);
      // The store caught up: the pending entry has done its job.
      if (extra && podAddresses(p).length > 0) { this.pending.delete(key); out.push(p); continue; }
      out.push(extra ? withIPs(p, extra.ips) : p);
    }
    for (const [key, extra] of this.pending) {
      if (seen.has(key)) continue;
      // Not yet seen through the watch: the object read at ADD stands in, for a while.
      if (extra.pod && Date.now() - extra.since < PENDING_UNSEEN_MS) out.push(withIPs(extra.pod, extra.ips));
      else this.pending.delete(key);
    }
    return out;
  }

  private async syncOnce(): Promise<PolicySyncReport> {
    const pods = this.pods();
    const world = { pods, namespaces: this.o.inputs.namespaces(), policies: this.o.inputs.policies(), nodes: this.o.inputs.nodes() };
    const table = this.renderer.render({ nodeName: this.o.nodeName, pods, namespaces: world.namespaces, policies: world.policies, ipv6: this.o.ipv6 });
    let applied: { rebuilt: boolean; operations: number };
    try {
      applied = await this.o.kernel.sync(table, this.last && touchedSince(this.last, table));
    } catch (err) {
      this.last = undefined; // the applier reads the kernel again; so must we compare everything
      throw err;
    }
    this.last = table;
    const isolated = [...table.elements].filter(([n]) => n.startsWith('ingress') || n.startsWith('egress')).reduce((n, [, e]) => n + e.size, 0);
    let cut = 0;
    if (applied.operations > 0 || this.cutOwed) {
      this.cutOwed = true;
      const local = new Set(indexWorld(this.o.nodeName, pods, world.namespaces).local.flatMap((p) => p.ips));
      const doomed = flowsToCut(await this.o.kernel.listFlows(), (ip) => local.has(ip), this.o.judge(world));
      // Each alone: a flow that ended meanwhile is no reason to keep the others.
      const results = await Promise.allSettled(doomed.map((f) => this.o.kernel.deleteFlow(f)));
      cut = results.filter((r) => r.status === 'fulfilled').length;
      this.cutOwed = false;
    }
    return { ...applied, cut, isolated };
  }
}
