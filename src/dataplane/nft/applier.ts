// Makes the kernel hold one rendered NftTable, each sync one `nft -f` transaction that writes only
// what differs: blocks added, changed (a chain is flushed and refilled) or removed, and element diffs.
//
// The applier keeps a mirror of what it last wrote, so a change to one object costs only its own
// blocks and elements. At start (and after forget() or a failed sync) it reads the table back: the
// kernel's blocks become the mirror and only what differs is written, so a restarted agent whose
// render is unchanged writes nothing. A table it cannot patch (absent, holding blocks of other kinds,
// a set declared differently, a base chain hooked differently) is rebuilt whole in one transaction.
import { blockLines, chainHeader, chainRules, elementScript, elementText, renderBlock, type NftBlock, type NftFamily, type NftTable } from './model.js';
import type { NftKernel } from './kernel.js';
import { parseTableListing } from './listing.js';

export interface NftSyncReport {
  /** The table was written whole (first start, or the kernel's could not be patched). */
  rebuilt: boolean;
  /** Blocks added, changed and removed plus elements added and deleted; 0 when nothing changed. */
  operations: number;
}

export interface MirrorBlock { kind: NftBlock['kind']; name: string; lines: string[] }
export interface Mirror {
  /** By id: sets and maps share one namespace in nft, chains have their own. */
  blocks: Map<string, MirrorBlock>;
  elements: Map<string, Map<string, string>>;
}

const blockId = (kind: NftBlock['kind'], name: string) => `${kind === 'chain' ? 'chain' : 'set'} ${name}`;
const sameLines = (a: string[], b: string[]) => a.length === b.length && a.every((l, i) => l === b[i]);

export class NftTableApplier {
  private mirror: Mirror | undefined;

  constructor(private readonly kernel: NftKernel, readonly family: NftFamily, readonly name: string) {}

  /** Drops the mirror: the next sync reads the kernel again (a full resync). */
  forget(): void { this.mirror = undefined; }

  /**
   * Makes the kernel hold `desired`. With `touched` (set name → keys that may have changed), only those
   * elements of those sets are compared, and sets absent from it are taken as unchanged; without it,
   * or right after reading the kernel, every element of every set in `desired.elements`.
   */
  async sync(desired: NftTable, touched?: Map<string, Iterable<string>>): Promise<NftSyncReport> {
    if (desired.family !== this.family || desired.name !== this.name) {
      throw new Error(`nft applier for ${this.family} ${this.name} was given table ${desired.family} ${desired.name}`);
    }
    try {
      return await this.syncOnce(desired, touched);
    } catch (err) {
      this.mirror = undefined;
      throw err;
    }
  }

  /** Removes the table. */
  async cleanup(): Promise<void> {
    this.mirror = undefined;
    await this.kernel.apply(`add table ${this.family} ${this.name}\ndelete table ${this.family} ${this.name}\n`);
  }

  private async syncOnce(desired: NftTable, touched: Map<string, Iterable<string>> | undefined): Promise<NftSyncReport> {
    let compareAll = touched === undefined;
    if (!this.mirror) {
      compareAll = true;
      this.mirror = await this.readKernel();
      if (!this.mirror) return this.rebuild(desired);
    }
    const plan = planTable(this.family, this.name, this.mirror, desired, compareAll ? undefined : touched);
    if (plan === 'rebuild') return this.rebuild(desired);
    if (plan.script.length > 0) await this.kernel.apply(plan.script.join('\n') + '\n');
    plan.commit(this.mirror);
    return { rebuilt: false, operations: plan.operations };
  }

  /** The kernel's table as a mirror; undefined when it is absent or holds what an applier never writes. */
  private async readKernel(): Promise<Mirror | undefined> {
    const text = await this.kernel.listTable(this.family, this.name);
    const listed = text === undefined ? undefined : parseTableListing(text);
    if (!listed || listed.foreign.length > 0) return undefined;
    const blocks = new Map(listed.blocks.map((b) => [blockId(b.kind, b.name), { kind: b.kind, name: b.name, lines: b.body }]));
    return { blocks, elements: listed.elements };
  }

  /** The whole table in one transaction: any table of that name goes, the render comes in its place. */
  private async rebuild(desired: NftTable): Promise<NftSyncReport> {
    const empty: Mirror = { blocks: new Map(), elements: new Map() };
    const plan = planTable(this.family, this.name, empty, desired, undefined);
    if (plan === 'rebuild') throw new Error('unreachable: an empty table needs no rebuild');
    const head = `${this.family} ${this.name}`;
    await this.kernel.apply([`add table ${head}`, `delete table ${head}`, `add table ${head}`, ...plan.script].join('\n') + '\n');
    plan.commit(empty);
    this.mirror = empty;
    return { rebuilt: true, operations: plan.operations };
  }
}

interface TablePlan {
  script: string[];
  operations: number;
  /** Brings the mirror to what the script wrote; called once the kernel took it. */
  commit(mirror: Mirror): void;
}

/**
 * The transaction from `have` to `want`, in the order the kernel can take it: new sets and maps, new
 * chains declared empty (so rules and map elements can name them in any order), chain bodies, element
 * deletes, element adds, then removed chains (flushed first, so no rule holds a set or chain), sets
 * and maps. 'rebuild' when a block changed in a way no flush can fix. Pure.
 */
export function planTable(family: string, table: string, have: Mirror, want: NftTable,
  touched: Map<string, Iterable<string>> | undefined): TablePlan | 'rebuild' {
  const head = `${family} ${table}`;
  const newSets: string[] = [];
  const declared: string[] = [];
  const bodies: string[] = [];
  const wantIds = new Set<string>();
  const blockEdits: MirrorBlock[] = [];
  const fresh = new Set<string>();
  let operations = 0;
  // 1. Blocks: new, changed, kept.
  for (const b of want.blocks) {
    const id = blockId(b.kind, b.name);
    wantIds.add(id);
    const lines = blockLines(b, 'listing');
    const old = have.blocks.get(id);
    if (old && old.kind === b.kind && sameLines(old.lines, lines)) continue;
    if (old && (old.kind !== b.kind || b.kind !== 'chain' || chainHeader(old.lines) !== chainHeader(lines))) return 'rebuild';
    operations++;
    blockEdits.push({ kind: b.kind, name: b.name, lines: [...lines] }); // the mirror's own copy: a render may be reused
    if (b.kind !== 'chain') {
      newSets.push(...renderBlock(b.kind, b.name, b.body));
      fresh.add(b.name);
      continue;
    }
    if (old) bodies.push(`flush chain ${head} ${b.name}`);
    else {
      const header = chainHeader(b.body);
      declared.push(...renderBlock('chain', b.name, header ? [header] : []));
    }
    const rules = chainRules(b.body);
    if (rules.length > 0) bodies.push(`table ${head} {`, ...renderBlock('chain', b.name, rules), '}');
  }
  const removed = [...have.blocks.entries()].filter(([id]) => !wantIds.has(id)).map(([, b]) => b);
  operations += removed.length;
  // 2. Elements of the sets this applier manages (those in want.elements).
  const deletes: string[] = [];
  const adds: string[] = [];
  const elementEdits: Array<{ set: string; key: string; value: string | undefined }> = [];
  for (const [set, wantElements] of want.elements) {
    const haveElements = fresh.has(set) ? new Map<string, string>() : have.elements.get(set) ?? new Map<string, string>();
    const keys: Iterable<string> | undefined = fresh.has(set) || !touched ? undefined : touched.get(set) ?? [];
    const dels: string[] = [];
    const puts: string[] = [];
    const compare = (k: string, h: string | undefined, w: string | undefined) => {
      if (h === w) return;
      elementEdits.push({ set, key: k, value: w });
      if (h !== undefined) dels.push(k);
      if (w !== undefined) puts.push(elementText(k, w));
    };
    if (keys === undefined) {
      for (const [k, h] of haveElements) compare(k, h, wantElements.get(k));
      for (const [k, w] of wantElements) if (!haveElements.has(k)) compare(k, undefined, w);
    } else {
      for (const k of new Set(keys)) compare(k, haveElements.get(k), wantElements.get(k));
    }
    deletes.push(...elementScript('delete', family, table, set, dels));
    adds.push(...elementScript('add', family, table, set, puts));
    operations += dels.length + puts.length;
  }
  // 3. Removed blocks: chains emptied first, then sets and maps, then the chains themselves.
  const removals = [
    ...removed.filter((b) => b.kind === 'chain' && chainRules(b.lines).length > 0).map((b) => `flush chain ${head} ${b.name}`),
    ...removed.filter((b) => b.kind !== 'chain').map((b) => `delete ${b.kind} ${head} ${b.name}`),
    ...removed.filter((b) => b.kind === 'chain').map((b) => `delete chain ${head} ${b.name}`),
  ];
  const wrap = (lines: string[]) => (lines.length ? [`table ${head} {`, ...lines, '}'] : []);
  const script = [...wrap(newSets), ...wrap(declared), ...bodies, ...deletes, ...adds, ...removals];
  return {
    script,
    operations,
    commit(mirror: Mirror) {
      for (const b of blockEdits) {
        mirror.blocks.set(blockId(b.kind, b.name), b);
        if (b.kind !== 'chain') mirror.elements.set(b.name, new Map());
      }
      for (const b of removed) {
        mirror.blocks.delete(blockId(b.kind, b.name));
        if (b.kind !== 'chain') mirror.elements.delete(b.name);
      }
      for (const e of elementEdits) {
        let m = mirror.elements.get(e.set);
        if (!m) mirror.elements.set(e.set, (m = new Map()));
        if (e.value === undefined) m.delete(e.key);
        else m.set(e.key, e.value);
      }
    },
  };
}
