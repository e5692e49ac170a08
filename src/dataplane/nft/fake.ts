// An in-memory nftables for pure tests: it takes the scripts an applier writes, applies each one whole
// or throws and keeps its state (as `nft -f` does), refuses what nft 1.0.6 refuses, counts the
// operations of every transaction, and prints tables as `nft list table` does, so an applier's
// adoption logic runs on it. Each refusal was checked against nft 1.0.6 in a network namespace. The fake
// is stricter in two places: a repeated `add element` of the same key and value (see FakeNftOptions),
// and an element with too few fields (nft 1.0.6 takes "tcp" into an inet_proto . inet_service set and
// lists "ip . 0"). Blocks list as nft lists them: sets and maps first, then chains, each in the order made.
import { NftError } from '../../kernel/nft.js';
import { ElementError, compareElements, overlaps, parseElement, perLine, setType, type Element, type SetType } from './fake-elements.js';
import { NftParseError, parseScript, type BlockDecl, type Command, type Family } from './fake-parse.js';

/** What an applier needs of the kernel (the lead points this at src/dataplane/nft/kernel.ts at merge). */
import type { NftKernel } from './kernel.js';

export interface FakeSet { kind: 'set' | 'map'; name: string; decl: string[]; type: SetType; elements: Map<string, Element> }
export interface FakeChain { kind: 'chain'; name: string; decl: string[]; rules: string[] }
export type FakeBlock = FakeSet | FakeChain;
export interface FakeTable { family: Family; name: string; sets: Map<string, FakeSet>; chains: Map<string, FakeChain> }

/** One transaction's work, counted as the applier counts it. */
export interface NftOperations {
  blocksAdded: number;
  blocksChanged: number;
  blocksRemoved: number;
  elementsAdded: number;
  elementsDeleted: number;
  /** The sum of the five. */
  total: number;
}

export interface FakeNftOptions {
  /**
   * An `add element` of a key already there: nft 1.0.6 accepts it when the value is the same and
   * refuses it ("File exists") when it differs. 'refuse' (the default) refuses both, stricter than the
   * kernel, so an applier whose mirror drifted shows up; 'kernel' behaves as nft does.
   */
  duplicateAdd?: 'refuse' | 'kernel';
}

const tableKey = (family: string, name: string) => `${family} ${name}`;
const emptyOps = (): NftOperations => ({ blocksAdded: 0, blocksChanged: 0, blocksRemoved: 0, elementsAdded: 0, elementsDeleted: 0, total: 0 });

/** The words of a rule outside its quoted strings (a comment may say anything). */
const unquoted = (rule: string) => rule.replace(/"[^"]*"/g, '""');
/** Chains a rule jumps or goes to. */
export const chainRefs = (rule: string) => [...unquoted(rule).matchAll(/\b(?:jump|goto) ([\w.-]+)/g)].map((m) => m[1]);
/** Sets and maps a rule looks up, maps through or updates. */
export const setRefs = (rule: string) => [...unquoted(rule).matchAll(/@([\w.-]+)/g)].map((m) => m[1]);

function cloneTables(tables: Map<string, FakeTable>): Map<string, FakeTable> {
  const out = new Map<string, FakeTable>();
  for (const [k, t] of tables) {
    out.set(k, {
      family: t.family, name: t.name,
      sets: new Map([...t.sets].map(([n, s]) => [n, { ...s, decl: [...s.decl], elements: new Map(s.elements) }])),
      chains: new Map([...t.chains].map(([n, c]) => [n, { ...c, decl: [...c.decl], rules: [...c.rules] }])),
    });
  }
  return out;
}

/** Rules nft lists in another shape than it takes them; only the forms flatnet writes. */
export function listingRule(rule: string): string {
  // nft folds "meta l4proto tcp" into the `th dport` of the same rule (src/dataplane/proxy/skeleton.ts, aff-T).
  const m = /^meta l4proto (tcp|udp|sctp) (update @\S+ \{.*) : (.*)th dport \}$/.exec(rule);
  if (m) return `${m[2]} : ${m[3]}${m[1]} dport }`;
  // A protocol match that the next expression implies is dropped from the listing (checked on nft 1.0.6).
  return rule
    .replace(/(^| )meta l4proto (tcp|udp|sctp) (?:th|\2) (dport|sport)(?= )/g, '$1$2 $3')
    .replace(/(^| )meta l4proto (?:ipv6-icmp|icmpv6) icmpv6 type(?= )/g, '$1icmpv6 type')
    .replace(/(^| )meta l4proto icmp icmp type(?= )/g, '$1icmp type')
    .replace(/(^| )meta nfproto ipv4 ip (?=saddr|daddr)/g, '$1ip ')
    .replace(/(^| )meta nfproto ipv6 ip6 (?=saddr|daddr)/g, '$1ip6 ');
}

/** A table as `nft list table` prints it: sets and maps, then chains, each in the order made. */
export function printTable(t: FakeTable, sortElements = true): string {
  const blocks: string[][] = [];
  for (const s of t.sets.values()) {
    const lines = [`\t${s.kind} ${s.name} {`, ...s.decl.map((d) => `\t\t${d}`)];
    const els = [...s.elements.values()];
    if (sortElements) els.sort(compareElements);
    if (els.length > 0) {
      const items = els.map((e) => (s.type.value ? `${e.key} : ${e.value}` : e.key));
      const g = perLine(s.type);
      let text = '\t\telements = { ';
      items.forEach((it, i) => { text += it + (i === items.length - 1 ? ' }' : (i + 1) % g === 0 ? ',\n\t\t\t     ' : ', '); });
      lines.push(text);
    }
    blocks.push([...lines, '\t}']);
  }
  for (const c of t.chains.values()) blocks.push([`\tchain ${c.name} {`, ...[...c.decl, ...c.rules.map(listingRule)].map((l) => `\t\t${l}`), '\t}']);
  return [`table ${t.family} ${t.name} {`, ...blocks.flatMap((b, i) => (i === 0 ? b : ['', ...b])), '}'].join('\n') + '\n';
}

export class FakeNft implements NftKernel {
  private tables = new Map<string, FakeTable>();
  private readonly duplicateAdd: 'refuse' | 'kernel';
  private failure: string | undefined;
  /** The last transaction's operations (zeros after a refused one). */
  lastOperations: NftOperations = emptyOps();
  /** Operations of every transaction applied so far. */
  totalOperations = 0;
  /** Every script applied (refused ones too), in order. */
  readonly scripts: string[] = [];

  constructor(opts: FakeNftOptions = {}) { this.duplicateAdd = opts.duplicateAdd ?? 'refuse'; }

  /** The next apply throws this (an injected kernel failure) and changes nothing. */
  failNext(message = 'injected failure'): void { this.failure = message; }

  async apply(script: string): Promise<void> { this.applySync(script); }

  async listTable(family: string, name: string): Promise<string | undefined> {
    const t = this.tables.get(tableKey(family, name));
    return t && printTable(t);
  }

  /** The same as apply, for callers that are not async (the tracer). */
  applySync(script: string): NftOperations {
    this.scripts.push(script);
    if (this.failure !== undefined) {
      const msg = this.failure;
      this.failure = undefined;
      this.lastOperations = emptyOps();
      throw new NftError(`nft -f: ${msg}`);
    }
    let cmds: Command[];
    try { cmds = parseScript(script); } catch (err) { throw this.refuse(err, 'syntax'); }
    const work = cloneTables(this.tables);
    const tx = new Transaction(work, this.tables, this.duplicateAdd);
    for (const c of cmds) {
      try { tx.run(c); } catch (err) { throw this.refuse(err, c.text); }
    }
    this.tables = work;
    this.lastOperations = tx.operations();
    this.totalOperations += this.lastOperations.total;
    return this.lastOperations;
  }

  private refuse(err: unknown, where: string): NftError {
    this.lastOperations = emptyOps();
    const msg = err instanceof Error ? err.message : String(err);
    return new NftError(`nft -f: ${msg}${where === 'syntax' ? '' : `\n  in: ${where}`}`, { cause: err });
  }

  /** Every table in canonical text: tables by family and name, blocks in declaration order, elements sorted. */
  dump(): string {
    return [...this.tables.values()].sort((a, b) => tableKey(a.family, a.name).localeCompare(tableKey(b.family, b.name)))
      .map((t) => printTable(t)).join('\n');
  }

  /** The tables as they stand (read-only use: the tracer walks them). */
  state(): ReadonlyMap<string, FakeTable> { return this.tables; }

  /** Whether a table exists. */
  has(family: string, name: string): boolean { return this.tables.has(tableKey(family, name)); }
}

/** One transaction over a working copy; throws at the first command nft would refuse. */
class Transaction {
  private readonly touched = new Set<string>();
  private elementsAdded = 0;
  private elementsDeleted = 0;

  constructor(private readonly work: Map<string, FakeTable>, private readonly before: Map<string, FakeTable>, private readonly duplicateAdd: 'refuse' | 'kernel') {}

  private table(family: string, name: string): FakeTable {
    const t = this.work.get(tableKey(family, name));
    if (!t) throw new Error(`table ${family} ${name}: No such file or directory`);
    return t;
  }

  private set(t: FakeTable, name: string): FakeSet {
    const s = t.sets.get(name);
    if (!s) throw new Error(`set or map ${name} in table ${t.family} ${t.name}: No such file or directory`);
    return s;
  }

  private chain(t: FakeTable, name: string): FakeChain {
    const c = t.chains.get(name);
    if (!c) throw new Error(`chain ${name} in table ${t.family} ${t.name}: No such file or directory`);
    return c;
  }

  private touch(t: FakeTable, kind: string, name: string): void { this.touched.add(`${tableKey(t.family, t.name)}\0${kind === 'chain' ? 'chain' : 'set'}\0${name}`); }

  run(c: Command): void {
    switch (c.op) {
      case 'add table':
        if (!this.work.has(tableKey(c.family, c.table))) this.work.set(tableKey(c.family, c.table), { family: c.family, name: c.table, sets: new Map(), chains: new Map() });
        return;
      case 'delete table': {
        const t = this.table(c.family, c.table);
        for (const s of t.sets.values()) { this.elementsDeleted += s.elements.size; this.touch(t, 'set', s.name); }
        for (const ch of t.chains.values()) this.touch(t, 'chain', ch.name);
        this.work.delete(tableKey(c.family, c.table));
        return;
      }
      case 'flush table': {
        const t = this.table(c.family, c.table);
        for (const ch of t.chains.values()) if (ch.rules.length) { ch.rules = []; this.touch(t, 'chain', ch.name); }
        for (const s of t.sets.values()) { this.elementsDeleted += s.elements.size; s.elements.clear(); }
        return;
      }
      case 'table': return this.tableBlock(c.family, c.table, c.blocks);
      case 'add element': return this.addElements(this.set(this.table(c.family, c.table), c.set), this.table(c.family, c.table), c.elements);
      case 'delete element': {
        const t = this.table(c.family, c.table);
        const s = this.set(t, c.set);
        for (const text of c.elements) {
          const e = this.element(s, text, true);
          if (!s.elements.delete(e.key)) throw new Error(`element ${e.key} of ${s.name}: element does not exist`);
          this.elementsDeleted++;
        }
        return;
      }
      case 'flush chain': {
        const t = this.table(c.family, c.table);
        this.chain(t, c.name).rules = [];
        this.touch(t, 'chain', c.name);
        return;
      }
      case 'flush set': case 'flush map': {
        const s = this.set(this.table(c.family, c.table), c.name);
        this.elementsDeleted += s.elements.size;
        s.elements.clear();
        return;
      }
      case 'delete chain': {
        const t = this.table(c.family, c.table);
        this.chain(t, c.name);
        // The kernel deletes the chain's own rules first, then refuses if anything still jumps here.
        const users = [...t.chains.values()].filter((ch) => ch.name !== c.name && ch.rules.some((r) => chainRefs(r).includes(c.name))).map((ch) => `chain ${ch.name}`);
        for (const s of t.sets.values()) {
          if (s.type.value === 'verdict' && [...s.elements.values()].some((e) => chainRefs(e.value).includes(c.name))) users.push(`map ${s.name}`);
        }
        if (users.length) throw new Error(`chain ${c.name}: Device or resource busy (still used by ${users.join(', ')})`);
        t.chains.delete(c.name);
        this.touch(t, 'chain', c.name);
        return;
      }
      case 'delete set': case 'delete map': {
        const t = this.table(c.family, c.table);
        const s = this.set(t, c.name);
        // nft 1.0.6 deletes a set by `delete map` and a map by `delete set` alike.
        const users = [...t.chains.values()].filter((ch) => ch.rules.some((r) => setRefs(r).includes(c.name))).map((ch) => `chain ${ch.name}`);
        if (users.length) throw new Error(`${s.kind} ${c.name}: Device or resource busy (still used by ${users.join(', ')})`);
        this.elementsDeleted += s.elements.size;
        t.sets.delete(c.name);
        this.touch(t, 'set', c.name);
        return;
      }
    }
  }

  /** `table F T { ... }`: makes the table if need be, declares its sets and chains, then elements, then rules (so a rule may jump to a chain declared after it, as in nft). */
  private tableBlock(family: Family, name: string, blocks: BlockDecl[]): void {
    this.run({ op: 'add table', family, table: name, text: '' });
    const t = this.table(family, name);
    for (const b of blocks) {
      if (b.kind === 'chain') {
        const have = t.chains.get(b.name);
        if (!have) { t.chains.set(b.name, { kind: 'chain', name: b.name, decl: b.decl, rules: [] }); this.touch(t, 'chain', b.name); }
        else if (b.decl.length && b.decl.join() !== have.decl.join()) {
          throw new Error(`chain ${b.name}: Operation not supported (exists as "${have.decl.join(' ') || 'a regular chain'}", redeclared as "${b.decl.join(' ')}")`);
        }
        continue;
      }
      let type: SetType;
      try { type = setType(b.kind, b.decl); } catch (err) { throw new Error(`${b.kind} ${b.name}: ${(err as Error).message}`); }
      const have = t.sets.get(b.name);
      if (!have) { t.sets.set(b.name, { kind: b.kind, name: b.name, decl: b.decl, type, elements: new Map() }); this.touch(t, b.kind, b.name); }
      else if (have.kind !== b.kind || have.decl.join('\n') !== b.decl.join('\n')) {
        throw new Error(`${b.kind} ${b.name}: File exists (declared as "${have.decl.join('; ')}", redeclared as "${b.decl.join('; ')}")`);
      }
    }
    for (const b of blocks) if (b.kind !== 'chain' && b.elements.length) this.addElements(t.sets.get(b.name)!, t, b.elements);
    for (const b of blocks) {
      if (b.kind !== 'chain' || b.rules.length === 0) continue;
      for (const r of b.rules) {
        for (const c of chainRefs(r)) if (!t.chains.has(c)) throw new Error(`rule "${r}" in chain ${b.name}: jump/goto to chain ${c}: No such file or directory`);
        for (const s of setRefs(r)) if (!t.sets.has(s)) throw new Error(`rule "${r}" in chain ${b.name}: set or map @${s}: No such file or directory`);
      }
      t.chains.get(b.name)!.rules.push(...b.rules);
      this.touch(t, 'chain', b.name);
    }
  }

  private element(s: FakeSet, text: string, forDelete = false): Element {
    try {
      // A delete names the key; a map's value may be given or left out.
      return parseElement(text, s.type, forDelete);
    } catch (err) {
      if (err instanceof ElementError) throw new Error(`${s.kind} ${s.name}: ${err.message}`);
      throw err;
    }
  }

  private addElements(s: FakeSet, t: FakeTable, texts: string[]): void {
    const fresh: Element[] = [];
    for (const text of texts) {
      const e = this.element(s, text);
      for (const c of chainRefs(e.value)) if (!t.chains.has(c)) throw new Error(`element "${text}" of ${s.name}: chain ${c}: No such file or directory`);
      const have = s.elements.get(e.key) ?? fresh.find((f) => f.key === e.key);
      if (have) {
        if (have.value !== e.value) throw new Error(`element ${e.key} of ${s.name}: File exists (holds "${have.value}", added as "${e.value}")`);
        if (this.duplicateAdd === 'refuse') throw new Error(`element ${e.key} of ${s.name}: already there (the fake refuses a repeated add; nft 1.0.6 accepts one with the same value)`);
        continue;
      }
      if (s.type.interval) {
        // nft 1.0.6: "conflicting intervals specified" within one command, "interval overlaps with an
        // existing one" against the set; a concatenation's overlap is the kernel's "File exists".
        const within = fresh.find((f) => overlaps(f.fields, e.fields));
        if (within) throw new Error(`element ${e.key} of ${s.name}: conflicting intervals specified (with ${within.key})`);
        const old = [...s.elements.values()].find((f) => overlaps(f.fields, e.fields));
        if (old) throw new Error(`element ${e.key} of ${s.name}: interval overlaps with an existing one (${old.key})`);
      }
      fresh.push(e);
    }
    for (const e of fresh) s.elements.set(e.key, e);
    this.elementsAdded += fresh.length;
  }

  /** Blocks counted once each, by what the transaction did to them: made, removed, or changed in place. */
  operations(): NftOperations {
    const ops = emptyOps();
    for (const id of this.touched) {
      const [tk, kind, name] = id.split('\0');
      const find = (m: Map<string, FakeTable>) => {
        const t = m.get(tk);
        return kind === 'chain' ? t?.chains.get(name) : t?.sets.get(name);
      };
      const was = find(this.before);
      const is = find(this.work);
      if (!was && is) ops.blocksAdded++;
      else if (was && !is) ops.blocksRemoved++;
      // A chain flushed or given rules, or a block deleted and made again (a table rebuilt).
      else if (was && is) ops.blocksChanged++;
    }
    ops.elementsAdded = this.elementsAdded;
    ops.elementsDeleted = this.elementsDeleted;
    ops.total = ops.blocksAdded + ops.blocksChanged + ops.blocksRemoved + ops.elementsAdded + ops.elementsDeleted;
    return ops;
  }
}

export { NftParseError };
