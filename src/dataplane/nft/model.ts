// An nftables table as plain data (blocks and elements), and its two texts: the `nft -f` input that
// builds it, and the form `nft list table` prints it in, which is how an applier tells whether the
// kernel already holds it. Pure: renderers build NftTables, the applier (applier.ts) writes them.

export type NftFamily = 'ip' | 'ip6' | 'inet';

export interface NftBlock {
  kind: 'set' | 'map' | 'chain';
  name: string;
  /** Lines inside the block as `nft -f` takes them (declaration lines of a set, or a base chain's
   * "type ... hook ... priority ...; policy accept;" line followed by its rules). */
  body: string[];
  /** The same lines as `nft list table` prints them, where that differs. */
  listing?: string[];
}

export interface NftTable {
  family: NftFamily;
  name: string;
  /** In declaration order. */
  blocks: NftBlock[];
  /**
   * Elements of sets and maps: name → key → value ('' for a set). A set or map with no entry here is
   * not the applier's: its elements are left as they are (one the packet path fills, say).
   */
  elements: Map<string, Map<string, string>>;
}

/** The lines of a block in one of its two forms. */
export const blockLines = (b: NftBlock, form: 'input' | 'listing'): string[] => (form === 'listing' ? b.listing ?? b.body : b.body);

/** A base chain's first line: "type filter hook forward priority filter; policy accept;". */
export const isChainHeader = (line: string): boolean => /^type \S+ hook \S+/.test(line);

/** A chain's header line, if it is a base chain. */
export function chainHeader(lines: string[]): string | undefined {
  return lines.length > 0 && isChainHeader(lines[0]) ? lines[0] : undefined;
}

/** A chain's rules: its lines without the header. */
export function chainRules(lines: string[]): string[] {
  return chainHeader(lines) === undefined ? lines : lines.slice(1);
}

/** One block as it sits inside a table: "\tchain NAME {", its lines indented twice, "\t}". */
export function renderBlock(kind: NftBlock['kind'], name: string, lines: string[]): string[] {
  return [`\t${kind} ${name} {`, ...lines.map((l) => `\t\t${l}`), '\t}'];
}

/** An element as nft writes it: "key : value" in a map, "key" in a set. */
export const elementText = (key: string, value: string): string => (value ? `${key} : ${value}` : key);

/** `add element F T S { e1, e2 }` (or delete), or nothing when there are no elements. */
export function elementScript(verb: 'add' | 'delete', family: string, table: string, set: string, items: string[]): string[] {
  return items.length === 0 ? [] : [`${verb} element ${family} ${table} ${set} { ${items.join(', ')} }`];
}

/**
 * The table's text. "input": what `nft -f` takes to build it, elements included ("add element" lines
 * after the table). "listing": what `nft -t list table` prints for it (no elements): a blank line
 * between blocks, as nft prints them.
 */
export function renderTable(t: NftTable, form: 'input' | 'listing' = 'input'): string {
  const blocks = t.blocks.map((b) => renderBlock(b.kind, b.name, blockLines(b, form)));
  const inner = form === 'listing' ? blocks.flatMap((b, i) => (i === 0 ? b : ['', ...b])) : blocks.flat();
  const lines = [`table ${t.family} ${t.name} {`, ...inner, '}'];
  if (form === 'input') {
    for (const [set, elements] of t.elements) {
      lines.push(...elementScript('add', t.family, t.name, set, [...elements].map(([k, v]) => elementText(k, v))));
    }
  }
  return lines.join('\n') + '\n';
}
