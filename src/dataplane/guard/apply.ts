// Puts the guard table into the kernel: the skeleton once, then node-address set elements as diffs, each
// sync one `nft -f` transaction. Like the proxy's applier it keeps a mirror of the elements it wrote and
// adopts the kernel's table at start when its chains are already right, so a restarted agent writes nothing.
import { nftApply, nftListTable } from '../../kernel/nft.js';
import type { Netns } from '../../kernel/netns.js';
import { GUARD_TABLE, renderGuardSkeleton, type GuardElements, type GuardSet, type GuardSkeletonInputs } from './render.js';

const SETS: GuardSet[] = ['nodes4', 'nodes6'];

export interface GuardSyncReport { rebuilt: boolean; operations: number }

/** A `nft list table` listing split into its set elements and the rest (one line per element list or wrapped). */
export function parseGuardListing(text: string): { skeleton: string; elements: GuardElements } {
  const elements: GuardElements = { nodes4: new Set(), nodes6: new Set() };
  const kept: string[] = [];
  let current: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = /^\tset (\S+) \{$/.exec(lines[i]);
    if (head) current = head[1];
    const start = /^\t\telements = \{ (.*)$/.exec(lines[i]);
    if (!start) { kept.push(lines[i]); continue; }
    const parts = [start[1]];
    while (!parts[parts.length - 1].endsWith(' }') && i + 1 < lines.length) parts.push(lines[++i].trim());
    const items = parts.join(' ').slice(0, -2).split(',').map((s) => s.trim()).filter(Boolean);
    if (current === 'nodes4' || current === 'nodes6') for (const e of items) elements[current].add(e);
  }
  return { skeleton: kept.join('\n'), elements };
}

const normalize = (text: string) => text.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim()).join('\n');

export class GuardApplier {
  private applied: GuardElements | undefined;

  constructor(private readonly ns: Netns, private readonly inputs: GuardSkeletonInputs) {}

  /** Drops the mirror: the next sync reads the kernel again. */
  forget(): void { this.applied = undefined; }

  async sync(want: GuardElements): Promise<GuardSyncReport> {
    try {
      return await this.syncOnce(want);
    } catch (err) {
      this.applied = undefined;
      throw err;
    }
  }

  private async syncOnce(want: GuardElements): Promise<GuardSyncReport> {
    const skeleton = renderGuardSkeleton(this.inputs);
    if (!this.applied) {
      const text = await nftListTable(this.ns, 'inet', GUARD_TABLE).catch(() => undefined);
      const kernel = text === undefined ? undefined : parseGuardListing(text);
      if (kernel && normalize(kernel.skeleton) === normalize(skeleton)) {
        this.applied = kernel.elements;
      } else {
        // Absent, or not this shape: replaced whole, elements and all, in one transaction.
        const script = [`add table inet ${GUARD_TABLE}`, `delete table inet ${GUARD_TABLE}`, skeleton];
        for (const s of SETS) if (want[s].size) script.push(`add element inet ${GUARD_TABLE} ${s} { ${[...want[s]].join(', ')} }`);
        await nftApply(this.ns, script.join('\n') + '\n');
        this.applied = { nodes4: new Set(want.nodes4), nodes6: new Set(want.nodes6) };
        return { rebuilt: true, operations: want.nodes4.size + want.nodes6.size };
      }
    }
    const applied = this.applied;
    const script: string[] = [];
    let operations = 0;
    for (const s of SETS) {
      const dels = [...applied[s]].filter((e) => !want[s].has(e));
      const adds = [...want[s]].filter((e) => !applied[s].has(e));
      if (dels.length) script.push(`delete element inet ${GUARD_TABLE} ${s} { ${dels.join(', ')} }`);
      if (adds.length) script.push(`add element inet ${GUARD_TABLE} ${s} { ${adds.join(', ')} }`);
      operations += dels.length + adds.length;
    }
    if (script.length) await nftApply(this.ns, script.join('\n') + '\n');
    this.applied = { nodes4: new Set(want.nodes4), nodes6: new Set(want.nodes6) };
    return { rebuilt: false, operations };
  }

  /** Removes the table (the guard turned off). */
  async cleanup(): Promise<void> {
    await nftApply(this.ns, `add table inet ${GUARD_TABLE}\ndelete table inet ${GUARD_TABLE}\n`);
    this.applied = undefined;
  }
}
