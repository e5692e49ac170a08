// Puts a ProxyPlan into the kernel as element diffs, each sync one `nft -f` transaction.
//
// The applier keeps a mirror of the elements it last wrote, so a change to one Service costs only its
// own elements. At start (and on every full resync) it reads the table back: when the kernel's chains
// are already right it keeps them and fixes only elements that differ (a restarted agent writes
// nothing), otherwise it rebuilds the table whole in one transaction.
import { runCommand } from '../../kernel/exec.js';
import { nftApply } from '../../kernel/nft.js';
import { readSetElements } from '../../kernel/nft-elements.js';
import type { Netns } from '../../kernel/netns.js';
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

/** The elements of every map and set in a `nft list table` listing, and the listing without them. */
export function parseListing(text: string): { skeleton: string; elements: Elements; affinity: Map<string, string> } {
  const elements = emptyElements();
  const affinity = new Map<string, string>();
  let current: string | undefined;
  const kept: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const head = /^\t(?:map|set) (\S+) \{$/.exec(line);
    if (head) current = head[1];
    const start = /^\t\telements = \{ (.*)$/.exec(line);
    if (!start) { kept.push(line); continue; }
    // An element list runs until the line that ends with " }", wrapping after commas. The lines are
    // gathered, not concatenated one by one: at 10,000 Services that is 60,000 lines.
    const parts = [start[1]];
    while (!parts[parts.length - 1].endsWith(' }') && i + 1 < lines.length) parts.push(lines[++i].trim());
    const body = parts.join(' ').slice(0, -2);
    for (const item of body.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [key, value = ''] = item.split(' : ');
      if (current === 'affinity') affinity.set(key.replace(/ (timeout|expires) \S+/g, ''), value);
      else if ((PROXY_MAPS as readonly string[]).includes(current ?? '')) elements[current as ProxyMap].set(key, value);
    }
  }
  return { skeleton: kept.join('\n'), elements, affinity };
}

/**
 * Whether two listings hold the same maps, sets and chains, in any order: a chain added to a live
 * table (a new affinity timeout) is listed last, where a fresh table would list it in its place.
 */
export function sameBlocks(a: string, b: string): boolean {
  // The table's own first and last lines go first, so the closing brace sticks to no block.
  const blocks = (text: string) => text.trim().split('\n').slice(1, -1).join('\n').split('\n\n').map((x) => x.trim()).sort();
  return JSON.stringify(blocks(a)) === JSON.stringify(blocks(b));
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

/** An element as nft writes it: "key : value" in a map, "key" in a set. */
const element = ([key, value]: [string, string]) => (value ? `${key} : ${value}` : key);

/** The layouts of the maps the applier compares (affinity is the packet path's, read only on demand). */
const proxyLayouts = Object.fromEntries(PROXY_MAPS.map((m) => [m, PROXY_LAYOUTS[m]]));

/** One table's block of a listing of many: from its first line to the closing brace at column 0. */
export function tableBlock(listing: string, head: string): string | undefined {
  const start = listing.indexOf(`${head}\n`);
  if (start < 0 || (start > 0 && listing[start - 1] !== '\n')) return undefined;
  const end = listing.indexOf('\n}\n', start);
  return end < 0 ? undefined : listing.slice(start, end + 3);
}

const elementLines = (verb: 'add' | 'delete', map: string, items: string[]) =>
  items.length === 0 ? [] : [`${verb} element ip ${PROXY_TABLE} ${map} { ${items.join(', ')} }`];

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
        for (const m of PROXY_MAPS) script.push(...elementLines('add', m, [...plan.elements[m]].map(element)));
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
        if (w !== undefined) adds.push(element([k, w]));
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
      const match = r.map === 'endpoints' ? ['--orig-dst', parts[0], '--orig-port-dst', parts[2]] : ['--orig-port-dst', parts[1]];
      const { cmd, args } = this.ns.wrap('conntrack', ['-D', '-p', 'udp', ...match, '--reply-src', r.value.split(' . ')[0]]);
      const out = await runCommand(cmd, args);
      return Number(/(\d+) flow entries have been deleted/.exec(out.stderr + out.stdout)?.[1] ?? 0);
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
    const { cmd, args } = this.ns.wrap('nft', ['-t', 'list', 'ruleset', 'ip']);
    const [terse, dumped] = await Promise.all([runCommand(cmd, args), readSetElements(this.ns, 'ip', PROXY_TABLE, proxyLayouts)]);
    const table = terse.code === 0 ? tableBlock(terse.stdout, `table ip ${PROXY_TABLE} {`) : undefined;
    if (table === undefined) return undefined;
    let skeleton = table;
    let elements: Elements;
    if (dumped) {
      elements = Object.fromEntries(PROXY_MAPS.map((m) => [m, dumped.get(m)!])) as Elements;
    } else {
      const full = this.ns.wrap('nft', ['list', 'table', 'ip', PROXY_TABLE]);
      const r = await runCommand(full.cmd, full.args);
      if (r.code !== 0) return undefined;
      ({ skeleton, elements } = parseListing(r.stdout));
    }
    const picks = [...skeleton.matchAll(/^\tchain pick-(\d+) \{/gm)].map((m) => Number(m[1]));
    const timeouts = [...skeleton.matchAll(/^\tchain aff-(\d+) \{/gm)].map((m) => Number(m[1]));
    return { skeleton, elements, maxCount: Math.max(0, ...picks), timeouts };
  }

  /** Session-affinity memory: (client . ClusterIP . protocol . port) → the endpoint it was sent to. */
  private async readAffinity(): Promise<Map<string, string>> {
    const dumped = await readSetElements(this.ns, 'ip', PROXY_TABLE, { affinity: PROXY_LAYOUTS.affinity });
    if (dumped) return dumped.get('affinity')!;
    const { cmd, args } = this.ns.wrap('nft', ['list', 'map', 'ip', PROXY_TABLE, 'affinity']);
    const r = await runCommand(cmd, args);
    return r.code === 0 ? parseListing(r.stdout).affinity : new Map();
  }

  /** Removes the table (the proxy turned off). */
  async cleanup(): Promise<void> {
    await nftApply(this.ns, `add table ip ${PROXY_TABLE}\ndelete table ip ${PROXY_TABLE}\n`);
    this.applied = undefined;
  }
}
