// The elements of nft sets and maps, read over netlink by flatnet-nft-dump (nft-dump.c) and decoded
// into the text `nft list` prints for them ("10.96.0.10 . tcp . 80 : goto pick-3"), so a caller
// compares them with what it rendered exactly as it would compare a listing. `nft list table` formats
// every element in userspace (~1 s for 60,000 elements on nft 1.0.6); the dump takes ~0.1 s.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from './exec.js';
import type { Netns } from './netns.js';

/** nft's data types as they sit in a set key or value: each field of a concatenation padded to 4 bytes. */
export type NftField =
  | 'ipv4_addr' // 4 bytes, network order
  | 'inet_proto' // 1 byte
  | 'inet_service' // 2 bytes, network order
  | 'integer32'; // 4 bytes, host order: what `numgen` and `meta mark` yield

/** How one set's or map's elements are laid out: key fields, and value fields or a verdict. */
export interface NftSetLayout { key: NftField[]; data?: NftField[] | 'verdict' }

const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp', 132: 'sctp' };
// include/uapi/linux/netfilter/nf_tables.h: NF_DROP 0, NF_ACCEPT 1; NFT_CONTINUE -1, BREAK -2, JUMP -3, GOTO -4, RETURN -5.
const VERDICTS: Record<number, string> = { 0: 'drop', 1: 'accept', [-1]: 'continue', [-2]: 'break', [-3]: 'jump', [-4]: 'goto', [-5]: 'return' };

const WIDTH: Record<NftField, number> = { ipv4_addr: 4, inet_proto: 1, inet_service: 2, integer32: 4 };

/** A concatenation's bytes (hex) as nft prints them: fields joined by " . ". Throws when the length does not fit. */
export function decodeFields(hex: string, fields: NftField[]): string {
  const b = Buffer.from(hex, 'hex');
  const padded = fields.length > 1;
  const out: string[] = [];
  let at = 0;
  for (const f of fields) {
    const w = WIDTH[f];
    if (at + w > b.length) throw new Error(`nft element ${hex}: too short for ${fields.join(' . ')}`);
    if (f === 'ipv4_addr') out.push(`${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`);
    else if (f === 'inet_proto') out.push(PROTOCOLS[b[at]] ?? String(b[at]));
    else if (f === 'inet_service') out.push(String(b.readUInt16BE(at)));
    else out.push(String(b.readUInt32LE(at)));
    at += padded ? (w + 3) & ~3 : w;
  }
  if (at !== b.length) throw new Error(`nft element ${hex}: ${b.length} bytes, not ${at} for ${fields.join(' . ')}`);
  return out.join(' . ');
}

/** "v:-4:pick-3" → "goto pick-3". */
export function decodeVerdict(text: string): string {
  const [, code, chain] = /^v:(-?\d+):(.*)$/.exec(text) ?? [];
  const word = VERDICTS[Number(code)];
  if (code === undefined || !word) throw new Error(`nft verdict "${text}" is not one flatnet writes`);
  return chain ? `${word} ${chain}` : word;
}

function dumpBinary(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  // Beside the bundled CLI (dist/bin, or dist/bin/chunks), or dist/bin seen from a compiled module (dist/src/kernel).
  return [join(here, 'flatnet-nft-dump'), join(here, '..', 'flatnet-nft-dump'), join(here, '../../bin/flatnet-nft-dump')].find(existsSync);
}

export type SetElements = Map<string, Map<string, string>>;

/**
 * Every element of the named sets of one table: set → (key → value, '' in a set). Undefined when a set
 * is missing or the dump helper cannot run: the caller falls back to `nft list`.
 */
export async function readSetElements(ns: Netns, family: 'ip' | 'ip6' | 'inet', table: string,
  layouts: Record<string, NftSetLayout>): Promise<SetElements | undefined> {
  const bin = dumpBinary();
  if (!bin) return undefined;
  const names = Object.keys(layouts);
  const { cmd, args } = ns.wrap(bin, [family, table, ...names]);
  const r = await runCommand(cmd, args);
  if (r.code !== 0) return undefined;
  const out: SetElements = new Map(names.map((n) => [n, new Map<string, string>()]));
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    const [set, key, data] = line.split('\t');
    if (key === 'missing') return undefined;
    const layout = layouts[set];
    if (!layout) continue;
    const value = data === '-' || !layout.data ? ''
      : layout.data === 'verdict' ? decodeVerdict(data) : decodeFields(data.replace(/^x:/, ''), layout.data);
    out.get(set)!.set(decodeFields(key, layout.key), value);
  }
  return out;
}

/** How many elements each named set of one table holds (absent sets left out); undefined when the dump helper cannot run. */
export async function countSetElements(ns: Netns, family: string, table: string, names: string[]): Promise<Map<string, number> | undefined> {
  const bin = dumpBinary();
  if (!bin || names.length === 0) return bin ? new Map() : undefined;
  const { cmd, args } = ns.wrap(bin, [family, table, ...names]);
  const r = await runCommand(cmd, args);
  if (r.code !== 0) return undefined;
  const counts = new Map<string, number>(names.map((n) => [n, 0]));
  for (const line of r.stdout.split('\n')) {
    const [set, key] = line.split('\t');
    if (!line) continue;
    if (key === 'missing') counts.delete(set);
    else counts.set(set, (counts.get(set) ?? 0) + 1);
  }
  return counts;
}
