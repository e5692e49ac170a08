// nftables changes go in as one `nft -f` transaction: all of it applies or none of it does. Reads are
// `nft list` text, the form callers render to compare against.
import { runCommand } from './exec.js';
import type { Netns } from './netns.js';

export class NftError extends Error {}

export async function nftApply(ns: Netns, script: string): Promise<void> {
  const { cmd, args } = ns.wrap('nft', ['-f', '-']);
  const r = await runCommand(cmd, args, script);
  if (r.code !== 0) throw new NftError(`nft -f: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** nft's answer when the table, set or chain named does not exist (nft 1.0.6: ENOENT's text). */
const isMissing = (stderr: string) => /^Error: No such file or directory/m.test(stderr);

async function list(ns: Netns, args: string[]): Promise<string | undefined> {
  const w = ns.wrap('nft', args);
  const r = await runCommand(w.cmd, w.args);
  if (r.code === 0) return r.stdout;
  if (isMissing(r.stderr)) return undefined;
  throw new NftError(`nft ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** One table's block of a listing of many: from its first line to the closing brace at column 0. */
export function tableBlock(listing: string, head: string): string | undefined {
  const start = listing.indexOf(`${head}\n`);
  if (start < 0 || (start > 0 && listing[start - 1] !== '\n')) return undefined;
  const end = listing.indexOf('\n}\n', start);
  return end < 0 ? undefined : listing.slice(start, end + 3);
}

/**
 * `nft list table F T`: undefined when the table is absent. `terse` leaves out every set's elements:
 * it lists the family's ruleset with `-t` and cuts the table out, ~15 ms for the proxy's table at
 * 10,000 Services, where a full listing takes ~1 s (nft 1.0.6 still fetches every element for
 * `nft -t list table`: 0.7-1.7 s there).
 */
export async function nftListTable(ns: Netns, family: string, name: string, opts: { terse?: boolean } = {}): Promise<string | undefined> {
  if (!opts.terse) return list(ns, ['list', 'table', family, name]);
  const ruleset = await list(ns, ['-t', 'list', 'ruleset', family]);
  return ruleset === undefined ? undefined : tableBlock(ruleset, `table ${family} ${name} {`);
}

/** `nft list set|map F T S`: the table around that one set with its elements; undefined when absent. */
export function nftListSet(ns: Netns, kind: 'set' | 'map', family: string, table: string, name: string): Promise<string | undefined> {
  return list(ns, ['list', kind, family, table, name]);
}
