// Reads the text `nft list table` prints (nft 1.0.6) back into blocks and elements, so an applier can
// compare the kernel's table with a render. Pure.
//
// What nft prints for elements (captured from nft 1.0.6, see test/unit/nft-listing.test.ts):
//   - one element list per set, "\t\telements = { a, b," wrapped onto lines "\t\t\t     c, d }";
//   - a map element "key : value", a verdict value "goto ig-0a1b2c3d", "drop", "accept";
//   - a concatenation "10.0.0.1 . tcp . 80-90", each field as in a single-field set;
//   - interval sets: a single address bare; an address range that is exactly a prefix as the prefix
//     ("10.0.2.0-10.0.3.255" is printed "10.0.2.0/23", a host-bit prefix "10.0.1.5/24" as
//     "10.0.1.0/24", everything "0.0.0.0/0"); any other address range "10.0.1.1-10.0.1.5"; port
//     ranges always "81-90" (never a prefix); adjacent ranges stay separate elements
//     ("10.0.0.0-10.0.0.9, 10.0.0.10-10.0.0.19": nft 1.0.6 merges only with `flags auto-merge`);
//   - an element with a timeout "k timeout 30s expires 29s : v" (the key is read without them).
import type { NftBlock, NftFamily } from './model.js';

export interface ListedTable {
  family: NftFamily;
  name: string;
  /** Sets, maps and chains in listed order; a set's lines without its element list. */
  blocks: NftBlock[];
  /** Blocks of other kinds (flowtable, counter, ...): a table holding one was not made by an applier. */
  foreign: string[];
  /** Every listed set's and map's elements: name → key → value ('' in a set). */
  elements: Map<string, Map<string, string>>;
}

/** Element annotations nft prints after a key that are not part of it. */
const ANNOTATIONS = / (?:timeout|expires) \S+/g;

/** The items of an element list body ("a : x, b : y") as [key, value] pairs. */
export function parseElements(body: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of body.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const colon = item.indexOf(' : ');
    const key = colon < 0 ? item : item.slice(0, colon);
    out.push([key.includes(' timeout ') || key.includes(' expires ') ? key.replace(ANNOTATIONS, '') : key, colon < 0 ? '' : item.slice(colon + 3)]);
  }
  return out;
}

/**
 * The element lists of a listing, taken out: name of each set or map → its elements, and the listing
 * without them. Lines are gathered, not concatenated one at a time: at 10,000 Services that is 60,000.
 */
export function splitListing(text: string): { skeleton: string; elements: Map<string, Map<string, string>> } {
  const elements = new Map<string, Map<string, string>>();
  let current: string | undefined;
  const kept: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const head = /^\t(?:map|set) (\S+) \{$/.exec(line);
    if (head) { current = head[1]; elements.set(current, new Map()); }
    const start = /^\t\telements = \{ (.*)$/.exec(line);
    if (!start) { kept.push(line); continue; }
    // An element list runs until the line that ends with " }", wrapping after commas.
    const parts = [start[1]];
    while (!parts[parts.length - 1].endsWith(' }') && i + 1 < lines.length) parts.push(lines[++i].trim());
    const into = elements.get(current ?? '') ?? new Map<string, string>();
    for (const [k, v] of parseElements(parts.join(' ').slice(0, -2))) into.set(k, v);
  }
  return { skeleton: kept.join('\n'), elements };
}

/** The first table of a listing as blocks and elements; undefined when the text holds no table. */
export function parseTableListing(text: string): ListedTable | undefined {
  const { skeleton, elements } = splitListing(text);
  const lines = skeleton.split('\n');
  const start = lines.findIndex((l) => /^table \S+ \S+ \{$/.test(l));
  if (start < 0) return undefined;
  const [, family, name] = /^table (\S+) (\S+) \{$/.exec(lines[start])!;
  const blocks: NftBlock[] = [];
  const foreign: string[] = [];
  for (let i = start + 1; i < lines.length && lines[i] !== '}'; i++) {
    const head = /^\t(\S+) (\S+) \{$/.exec(lines[i]);
    if (!head) continue;
    const body: string[] = [];
    while (i + 1 < lines.length && lines[i + 1] !== '\t}') body.push(lines[++i].trim());
    i++;
    const [, kind, blockName] = head;
    if (kind === 'set' || kind === 'map' || kind === 'chain') blocks.push({ kind, name: blockName, body });
    else foreign.push(`${kind} ${blockName}`);
  }
  return { family: family as NftFamily, name, blocks, foreign, elements };
}

// Cutting one table out of a ruleset listing is the kernel's to do (a terse table listing needs it).
export { tableBlock } from '../../kernel/nft.js';

/**
 * Whether two listings hold the same maps, sets and chains, in any order: a chain added to a live
 * table is listed last, where a fresh table would list it in its place.
 */
export function sameBlocks(a: string, b: string): boolean {
  // The table's own first and last lines go first, so the closing brace sticks to no block.
  const blocks = (text: string) => text.trim().split('\n').slice(1, -1).join('\n').split('\n\n').map((x) => x.trim()).sort();
  return JSON.stringify(blocks(a)) === JSON.stringify(blocks(b));
}
