// Puts a ProxyPlan into the kernel as element diffs, each sync one `nft -f` transaction.
//
// The applier keeps a mirror of the elements it last wrote, so a change to one Service costs only its
// own elements. At start (and on every full resync) it reads the table back: when the kernel's chains
// are already right it keeps them and fixes only elements that differ (a restarted agent writes
// nothing), otherwise it rebuilds the table whole in one transaction.
//
// It keeps its own mirror rather than sitting on NftTableApplier (src/dataplane/nft): a Service that
// outgrows the pick chains needs the table rebuilt whole (nft 1.0.6 cannot add them live), a restart
// keeps as many pick chains as the kernel has, and 60,000 elements are read back over netlink in
// ~0.1 s where a listing takes ~1 s. The listing parser and the element script forms are shared.
import { conntrackDeleteUdpTo } from '../../kernel/conntrack.js';
import { nftApply, nftListSet, nftListTable } from '../../kernel/nft.js';
import { readSetElements } from '../../kernel/nft-elements.js';
import type { Netns } from '../../kernel/netns.js';
import { sameBlocks, splitListing } from '../nft/listing.js';
import { elementScript, elementText as element } from '../nft/model.js';
import { PROXY_MAPS, emptyElements, type ProxyMap, type ProxyPlan } from './render.js';
import { PROXY_LAYOUTS, PROXY_TABLE, renderSkeleton } from './skeleton.js';
import type { ProxyChanges } from './state.js';

type Elements = Record<ProxyMap, Map<string, string>>;

interface Applied { elements: Elements; maxCount: number; timeouts: Set<number> }

export interface ProxySyncReport {
  /** Table rebuilt from scratch (first start, or its chains were not ours). */
  rebuilt: boolean;
  /** Elements added plus deleted, chains added; 0 when nothing changed. */
  operations: number;
  /** UDP conntrack entries flushed toward endpoints that went. */
  flushed: number;
}

/** The applier's own copy: a plan may be kept by its renderer and changed in place (state.ts). */
const copyElements = (e: Elements): Elements => Object.fromEntries(PROXY_MAPS.map((m) => [m, new Map(e[m])])) as Elements;

// Shared with every nft table (src/dataplane/nft/listing.ts); exported here as well, where the proxy's tests look.
export { sameBlocks, tableBlock } from '../nft/listing.js';

/** The elements of every map and set in a `nft list table` listing, and the listing without them. */
export function parseListing(text: string): { skeleton: string; elements: Elements; affinity: Map<string, string> } {
  const { skeleton, elements: listed } = splitListing(text);
  const elements = emptyElements();
  for (const m of PROXY_MAPS) elements[m] = listed.get(m) ?? elements[m];
  return { skeleton, elements, affinity: listed.get('affinity') ?? new Map() };
}

/**
 * How many pick chains a table is built with: at least 64, else the next power of two. nft 1.0.6 cannot
 * add a rule that DNATs through a typeof map to a table it did not just declare ("conflicting protocols
 * specified: ip vs. th"), so the chains are made with the table, ahead of need, never one by one.
 */
export function pickChainsFor(endpoints: number): number {
  return Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, endpoints))));
}

/** The lines of one chain of a rendered table, from its "chain NAME {" to its closing brace. */
function chainBlock(table: string, name: string): string[] {
  const lines = table.split('\n');
  const start = lines.indexOf(`\tchain ${name} {`);
  return lines.slice(start, lines.indexOf('\t}', start) + 1);
}

/** The layouts of the maps the applier compares (affinity is the packet path's, read only on demand). */
const proxyLayouts = Object.fromEntries(PROXY_MAPS.map((m) => [m, PROXY_LAYOUTS[m]]));

const elementLines = (verb: 'add' | 'delete', map: string, items: string[]) => elementScript(verb, 'ip', PROXY_TABLE, map, items);

export class ProxyApplier {
  private applied: Applied | undefined;

  constructor(
    private readonly ns: Netns,
    private readonly cidrs: { clusterCIDR: string; serviceCIDR: string },
  ) {}

  /** Drops the mirror: the next sync reads the kernel again (a full resync). */
  forget(): void { this.applied = undefined; }

  /**
   * Makes the kernel hold `plan`. With `changes` (from ProxyState.take), only the touched elements are
   * compared; without, or after forget(), every one.
   */
  async sync(plan: ProxyPlan, changes?: ProxyChanges): Promise<ProxySyncReport> {
    try {
      return await this.syncOnce(plan, changes);
    } catch (err) {
      this.applied = undefined;
      throw err;
    }
  }

  private async syncOnce(plan: ProxyPlan, changes: ProxyChanges | undefined): Promise<ProxySyncReport> {
    const needMax = Math.max(1, ...plan.counts);
    // A Service with more endpoints than there are pick chains: the table is rebuilt with more.
    if (this.applied && needMax > this.applied.maxCount) this.applied = undefined;
    let compareAll = !changes || changes.full;
    if (!this.applied) {
      compareAll = true;
      const kernel = await this.readKernel();
      const maxCount = kernel && kernel.maxCount >= needMax ? kernel.maxCount : pickChainsFor(needMax);
      const timeouts = new Set([...plan.affinityTimeouts, ...(kernel?.timeouts ?? [])]);
      const listing = renderSkeleton({ ...this.cidrs, maxCount, affinityTimeouts: [...timeouts] }, 'listing').trimEnd();
      if (kernel && sameBlocks(kernel.skeleton, listing)) {
        this.applied = { elements: kernel.elements, maxCount, timeouts };
      } else {
        // Not ours, or an older shape: replace it whole, elements and all, in one transaction.
        const built = pickChainsFor(needMax);
        const script = [`add table ip ${PROXY_TABLE}`, `delete table ip ${PROXY_TABLE}`,
          renderSkeleton({ ...this.cidrs, maxCount: built, affinityTimeouts: [...plan.affinityTimeouts] })];
        for (const m of PROXY_MAPS) script.push(...elementLines('add', m, [...plan.elements[m]].map(([k, v]) => element(k, v))));
        await nftApply(this.ns, script.join('\n') + '\n');
        this.applied = { elements: copyElements(plan.elements), maxCount: built, timeouts: new Set(plan.affinityTimeouts) };
        const operations = PROXY_MAPS.reduce((n, m) => n + plan.elements[m].size, 0);
        return { rebuilt: true, operations, flushed: 0 };
      }
    }
    const applied = this.applied;
    const script: string[] = [];
    let operations = 0;
    // A new affinity timeout gets its chain first, so the elements that jump to it are valid in the same transaction.
    const grown = renderSkeleton({ ...this.cidrs, maxCount: 1, affinityTimeouts: [...plan.affinityTimeouts] });
    for (const t of plan.affinityTimeouts) {
      if (applied.timeouts.has(t)) continue;
      script.push(`table ip ${PROXY_TABLE} {`, ...chainBlock(grown, `aff-${t}`), '}');
      operations++;
    }
    const removedEndpoints: Array<{ key: string; value: string; map: ProxyMap }> = [];
    const edits: Array<{ map: ProxyMap; key: string; want: string | undefined }> = [];
    for (const m of PROXY_MAPS) {
      // Plain loops over the maps: at 10,000 Services a full compare covers 60,000 elements, and copies cost.
      const have = applied.elements[m];
      const want = plan.elements[m];
      const dels: string[] = [];
      const adds: string[] = [];
      const compare = (k: string, h: string | undefined, w: string | undefined) => {
        if (h === w) return;
        edits.push({ map: m, key: k, want: w });
        if (h !== undefined) {
          dels.push(k);
          if (m === 'endpoints' || m === 'nodeport-endpoints') removedEndpoints.push({ key: k, value: h, map: m });
        }
        if (w !== undefined) adds.push(element(k, w));
      };
      if (compareAll) {
        for (const [k, h] of have) compare(k, h, want.get(k));
        for (const [k, w] of want) if (!have.has(k)) compare(k, undefined, w);
      } else {
        for (const k of changes!.touched[m]) compare(k, have.get(k), want.get(k));
      }
      script.push(...elementLines('delete', m, dels), ...elementLines('add', m, adds));
      operations += dels.length + adds.length;
    }
    if (script.length > 0) await nftApply(this.ns, script.join('\n') + '\n');
    // The mirror takes the same edits the kernel took, so it stays the applier's own.
    for (const e of edits) {
      if (e.want === undefined) applied.elements[e.map].delete(e.key);
      else applied.elements[e.map].set(e.key, e.want);
    }
    for (const t of plan.affinityTimeouts) applied.timeouts.add(t);
    const flushed = await this.forgetGoneEndpoints(removedEndpoints, plan);
    return { rebuilt: false, operations, flushed };
  }

  /**
   * An endpoint that left: UDP has no connection to reset, so its conntrack entries would keep sending
   * a client's datagrams to it; and session affinity would keep choosing it. Both are removed.
   */
  private async forgetGoneEndpoints(removed: Array<{ key: string; value: string; map: ProxyMap }>, plan: ProxyPlan): Promise<number> {
    // A Service's endpoints sit at indices 0..N-1 of its key: look them up rather than scan the map.
    const stillServing = (serviceKey: string, endpoint: string, map: ProxyMap) => {
      for (let i = 0, v; (v = plan.elements[map].get(`${serviceKey} . ${i}`)) !== undefined; i++) if (v === endpoint) return true;
      return false;
    };
    const gone = removed.filter((r) => !stillServing(r.key.slice(0, r.key.lastIndexOf(' . ')), r.value, r.map)); // else only its index moved
    // UDP flows first and all at once: until they are gone a client's next datagram still goes to the old endpoint.
    const flushes = gone.filter((r) => r.key.split(' . ').includes('udp')).map(async (r) => {
      const parts = r.key.split(' . ');
      const to = r.map === 'endpoints' ? { dst: parts[0], port: Number(parts[2]) } : { port: Number(parts[1]) };
      // As before the kernel calls moved: a conntrack that cannot run flushes nothing and fails no sync.
      return conntrackDeleteUdpTo(this.ns, { ...to, endpoint: r.value.split(' . ')[0] }).catch(() => 0);
    });
    const flushed = (await Promise.all(flushes)).reduce((a, b) => a + b, 0);
    const affinityDeletes: string[] = [];
    let affinity: Map<string, string> | undefined;
    for (const r of gone) {
      const serviceKey = r.key.slice(0, r.key.lastIndexOf(' . '));
      // A ClusterIP's affinity key is the ClusterIP's; a NodePort's is "<node address> . <protocol> . <port>".
      const sticky = r.map === 'endpoints' ? plan.elements['affinity-services'].has(serviceKey)
        : [...plan.elements['affinity-services'].keys()].some((k) => k.endsWith(` . ${serviceKey}`));
      if (sticky) {
        affinity ??= await this.readAffinity();
        for (const [k, v] of affinity) if (v === r.value && k.endsWith(` . ${serviceKey}`)) affinityDeletes.push(k);
      }
    }
    if (affinityDeletes.length) {
      // Entries may have expired meanwhile; each delete stands alone so one missing does not undo the rest.
      for (const k of affinityDeletes) await nftApply(this.ns, elementLines('delete', 'affinity', [k]).join('\n') + '\n').catch(() => undefined);
    }
    return flushed;
  }

  /**
   * The table as the kernel holds it: its skeleton from a terse listing (no elements: ~15 ms), its
   * elements over netlink (~0.1 s at 10,000 Services, where `nft list table` takes ~1 s). Without the
   * dump helper, one full listing.
   */
  private async readKernel(): Promise<{ skeleton: string; elements: Elements; maxCount: number; timeouts: number[] } | undefined> {
    const [table, dumped] = await Promise.all([nftListTable(this.ns, 'ip', PROXY_TABLE, { terse: true }), readSetElements(this.ns, 'ip', PROXY_TABLE, proxyLayouts)]);
    if (table === undefined) return undefined;
    let skeleton = table;
    let elements: Elements;
    if (dumped) {
      elements = Object.fromEntries(PROXY_MAPS.map((m) => [m, dumped.get(m)!])) as Elements;
    } else {
      const full = await nftListTable(this.ns, 'ip', PROXY_TABLE);
      if (full === undefined) return undefined;
      ({ skeleton, elements } = parseListing(full));
    }
    const picks = [...skeleton.matchAll(/^\tchain pick-(\d+) \{/gm)].map((m) => Number(m[1]));
    const timeouts = [...skeleton.matchAll(/^\tchain aff-(\d+) \{/gm)].map((m) => Number(m[1]));
    return { skeleton, elements, maxCount: Math.max(0, ...picks), timeouts };
  }

  /** Session-affinity memory: (client . ClusterIP . protocol . port) → the endpoint it was sent to. */
  private async readAffinity(): Promise<Map<string, string>> {
    const dumped = await readSetElements(this.ns, 'ip', PROXY_TABLE, { affinity: PROXY_LAYOUTS.affinity });
    if (dumped) return dumped.get('affinity')!;
    const listed = await nftListSet(this.ns, 'map', 'ip', PROXY_TABLE, 'affinity').catch(() => undefined);
    return listed === undefined ? new Map() : parseListing(listed).affinity;
  }

  /** Removes the table (the proxy turned off). */
  async cleanup(): Promise<void> {
    await nftApply(this.ns, `add table ip ${PROXY_TABLE}\ndelete table ip ${PROXY_TABLE}\n`);
    this.applied = undefined;
  }
}
