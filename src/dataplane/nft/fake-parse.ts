// Reads the nft script forms flatnet writes (and the text `nft list table` prints back) into plain
// commands, for the in-memory nftables (fake.ts) and the packet tracer. Pure; no semantics here, only
// structure: statements split at newlines and ';' outside braces and quotes, as nft's own parser does.

export type Family = 'ip' | 'ip6' | 'inet';

/** A set, map or chain as declared inside `table F T { ... }` (or by `add chain/set/map`). */
export interface BlockDecl {
  kind: 'set' | 'map' | 'chain';
  name: string;
  /** set/map: declaration lines ("type ipv4_addr", "flags interval"); chain: the base chain's line, if any. */
  decl: string[];
  /** set/map: the items of its `elements = { ... }`. */
  elements: string[];
  /** chain: its rules, whitespace collapsed. */
  rules: string[];
}

export type Command =
  | { op: 'add table' | 'delete table' | 'flush table'; family: Family; table: string; text: string }
  | { op: 'table'; family: Family; table: string; blocks: BlockDecl[]; text: string }
  | { op: 'add element' | 'delete element'; family: Family; table: string; set: string; elements: string[]; text: string }
  | { op: 'flush chain' | 'delete chain' | 'delete set' | 'delete map' | 'flush set' | 'flush map'; family: Family; table: string; name: string; text: string };

export class NftParseError extends Error {}

const FAMILIES = new Set(['ip', 'ip6', 'inet']);

/**
 * Splits text into statements at newlines and ';' that sit outside braces and quotes; drops `#`
 * comments and blank statements. Braces keep a block (a table, an element list) one statement.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = false;
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      cur += c;
      if (c === '"') quote = false;
      continue;
    }
    if (c === '"') { quote = true; cur += c; continue; }
    if (c === '#') { while (i + 1 < text.length && text[i + 1] !== '\n') i++; continue; }
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (depth < 0) throw new NftParseError(`unbalanced "}" in: ${text.trim().slice(0, 200)}`);
    if (depth === 0 && (c === '\n' || c === ';')) { push(out, cur); cur = ''; continue; }
    cur += c;
  }
  if (depth !== 0 || quote) throw new NftParseError(`unterminated ${quote ? 'quote' : 'block'} in: ${text.trim().slice(0, 200)}`);
  push(out, cur);
  return out;
}

function push(out: string[], s: string): void {
  const t = s.trim();
  if (t) out.push(t);
}

/** Collapses runs of whitespace outside quotes, as nft prints a rule. */
export function normalize(s: string): string {
  let out = '';
  let quote = false;
  for (const c of s.trim()) {
    if (c === '"') quote = !quote;
    if (!quote && /\s/.test(c)) { if (!out.endsWith(' ')) out += ' '; continue; }
    out += c;
  }
  return out;
}

/** Items of a `{ a, b, c }` list, split at top-level commas. */
export function splitList(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = false;
  let cur = '';
  for (const c of body) {
    if (c === '"') quote = !quote;
    if (!quote && c === '{') depth++;
    if (!quote && c === '}') depth--;
    if (!quote && depth === 0 && c === ',') { push(out, normalize(cur)); cur = ''; continue; }
    cur += c;
  }
  push(out, normalize(cur));
  return out;
}

/** `head { body }` → [head, body]; the braces are the statement's first `{` and its last `}`. */
function braces(stmt: string): [string, string] | undefined {
  const open = stmt.indexOf('{');
  if (open < 0) return undefined;
  if (!stmt.endsWith('}')) throw new NftParseError(`expected "}" at the end of: ${stmt.slice(0, 200)}`);
  return [stmt.slice(0, open).trim(), stmt.slice(open + 1, -1)];
}

function family(word: string | undefined, stmt: string): Family {
  if (!word || !FAMILIES.has(word)) throw new NftParseError(`unknown family "${word}" in: ${stmt.slice(0, 200)}`);
  return word as Family;
}

/** One set, map or chain block: `set NAME { ... }`. */
export function parseBlock(kind: 'set' | 'map' | 'chain', name: string, body: string): BlockDecl {
  const block: BlockDecl = { kind, name, decl: [], elements: [], rules: [] };
  const parts = splitStatements(body);
  if (kind === 'chain') {
    // The base chain's "type ... hook ... priority ...; policy ...;" arrives split at its ';'.
    const base: string[] = [];
    for (const p of parts) {
      const n = normalize(p);
      if (block.rules.length === 0 && /^(type \S+ hook |policy |priority |device )/.test(n)) base.push(n);
      else block.rules.push(n);
    }
    if (base.length > 0) {
      const type = base.find((b) => b.startsWith('type '));
      if (!type) throw new NftParseError(`chain ${name}: "${base.join('; ')}" without "type ... hook ..."`);
      const policy = base.find((b) => b.startsWith('policy ')) ?? 'policy accept';
      block.decl = [`${type}; ${policy};`];
    }
    return block;
  }
  for (const p of parts) {
    const n = normalize(p);
    const el = /^elements\s*=\s*\{([\s\S]*)\}$/.exec(p.trim());
    if (el) block.elements.push(...splitList(el[1]));
    else block.decl.push(n);
  }
  // type/typeof first, as nft prints it; the rest in the order given.
  block.decl.sort((a, b) => Number(!/^type(of)? /.test(a)) - Number(!/^type(of)? /.test(b)));
  return block;
}

/** The blocks of a `table F T { ... }` body. */
function parseTableBody(body: string): BlockDecl[] {
  const blocks: BlockDecl[] = [];
  for (const stmt of splitStatements(body)) {
    const b = braces(stmt);
    const m = b && /^(set|map|chain) (\S+)$/.exec(normalize(b[0]));
    if (!b || !m) {
      if (/^(flags|comment) /.test(stmt)) continue; // table-level attributes: nothing to model
      throw new NftParseError(`unsupported statement in a table block: ${stmt.slice(0, 200)}`);
    }
    blocks.push(parseBlock(m[1] as BlockDecl['kind'], m[2], b[1]));
  }
  return blocks;
}

/** A whole script (or a listing) as commands, in order. Throws NftParseError on a form it does not know. */
export function parseScript(text: string): Command[] {
  const cmds: Command[] = [];
  for (const stmt of splitStatements(text)) {
    const head = normalize(braces(stmt)?.[0] ?? stmt);
    const w = head.split(' ');
    const text1 = normalize(stmt).slice(0, 300);
    if (w[0] === 'table' && w.length === 3) {
      const b = braces(stmt);
      if (!b) throw new NftParseError(`table without a body: ${text1}`);
      cmds.push({ op: 'table', family: family(w[1], stmt), table: w[2], blocks: parseTableBody(b[1]), text: text1 });
    } else if ((w[0] === 'add' || w[0] === 'delete' || w[0] === 'flush') && w[1] === 'table' && w.length === 4) {
      cmds.push({ op: `${w[0]} table` as 'add table', family: family(w[2], stmt), table: w[3], text: text1 });
    } else if ((w[0] === 'add' || w[0] === 'delete') && w[1] === 'element' && w.length === 5) {
      const b = braces(stmt);
      if (!b) throw new NftParseError(`element list without braces: ${text1}`);
      cmds.push({ op: `${w[0]} element` as 'add element', family: family(w[2], stmt), table: w[3], set: w[4], elements: splitList(b[1]), text: text1 });
    } else if (w[0] === 'add' && (w[1] === 'chain' || w[1] === 'set' || w[1] === 'map') && w.length === 5) {
      // `add chain F T C [{ ... }]`: the same as a table block holding that one block.
      const body = braces(stmt)?.[1] ?? '';
      cmds.push({ op: 'table', family: family(w[2], stmt), table: w[3], blocks: [parseBlock(w[1], w[4], body)], text: text1 });
    } else if ((w[0] === 'flush' || w[0] === 'delete') && ['chain', 'set', 'map'].includes(w[1]) && w.length === 5 && !stmt.includes('{')) {
      cmds.push({ op: `${w[0]} ${w[1]}` as 'flush chain', family: family(w[2], stmt), table: w[3], name: w[4], text: text1 });
    } else {
      throw new NftParseError(`unsupported command: ${text1}`);
    }
  }
  return cmds;
}
