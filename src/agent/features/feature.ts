// What every agent feature is to the agent: a sync loop over the cluster view that it can start, poke,
// wait for and stop, and a cleanup that removes what it put in the kernel (its table, its devices), which
// is also how a disabled feature goes away. The agent only wires features; each decides in its own file.
import type { Netns } from '../../kernel/netns.js';
import type { ClusterConfig } from '../../api/types.js';
import type { CniServerHooks } from '../../cni/server.js';
import { SyncRunner } from '../../store/runner.js';
import { observeFeatureSync, timed } from '../../metrics/registry.js';
import type { AgentView } from '../cluster-view.js';
import type { Underlay } from '../underlay.js';

export interface Feature {
  readonly name: string;
  /**
   * Starts the sync loop. Resolves when pods may start as far as this feature is concerned: the guard
   * (and policy) after their first sync, the others at once.
   */
  start(): Promise<void>;
  /** Asks for a sync soon (many pokes, one sync). */
  poke(): void;
  /** Resolves when no sync is running or pending. */
  idle(): Promise<void>;
  /** Completed syncs, failed or not (tests wait on it). */
  syncs(): number;
  stop(): Promise<void>;
  /** Removes the feature's own kernel state (table, devices); safe when there is none. */
  cleanup(): Promise<void>;
  /** Work the warm CNI server does in-process after ADD / DEL (policy isolates a pod before ADD returns). */
  readonly cniHooks?: CniServerHooks;
}

/** What a feature is built from: this node as registered, and the shared view of the cluster. */
export interface NodeContext {
  readonly ns: Netns;
  readonly nodeName: string;
  readonly underlay: Underlay;
  readonly podCIDRs: string[];
  /** Routed pod interfaces (IPv4-only nodes) or the bridge. */
  readonly podMode: 'routed' | 'bridge';
  readonly config: ClusterConfig;
  readonly view: AgentView;
  readonly resyncMs: number;
  readonly log: (msg: string) => void;
  /** Where policy drops are logged (<nodeDir>/drops.log); none: not logged. */
  readonly dropLogFile?: string;
}

export interface LoopSpec {
  name: string;
  ctx: NodeContext;
  /** One sync; `syncs` is how many ran before it (0: the first since start). */
  sync(syncs: number): Promise<void>;
  cleanup(): Promise<void>;
  /** Subscribes `poke` to the view changes this feature follows; called once, at start. */
  follow?(poke: () => void): void;
  /** start() waits for the first sync (pods must not start before it). */
  gatesPods?: boolean;
  cniHooks?: CniServerHooks;
}

/** A feature as one SyncRunner: the shape every feature here has. */
export function loopFeature(spec: LoopSpec): Feature {
  const { ctx } = spec;
  const runner: SyncRunner = new SyncRunner(() => timedSync(spec.name, () => spec.sync(runner.syncs)), {
    periodMs: ctx.resyncMs,
    onError: (err) => ctx.log(`${spec.name} sync failed: ${(err as Error).message}`),
  });
  return {
    name: spec.name,
    cniHooks: spec.cniHooks,
    async start() {
      spec.follow?.(() => runner.poke());
      runner.start();
      if (spec.gatesPods) await runner.idle();
    },
    poke: () => runner.poke(),
    idle: () => runner.idle(),
    syncs: () => runner.syncs,
    async stop() { runner.stop(); },
    cleanup: () => spec.cleanup(),
  };
}

/** One sync, its duration and result recorded per feature (flatnet_feature_sync_duration_seconds, ..._syncs_total). */
const timedSync = (feature: string, sync: () => Promise<void>): Promise<void> =>
  timed(sync, (seconds, ok) => observeFeatureSync(feature, seconds, ok));
