// nftables changes go in as one `nft -f` transaction: all of it applies or none of it does.
import { runCommand } from './exec.js';
import type { Netns } from './netns.js';

export class NftError extends Error {}

export async function nftApply(ns: Netns, script: string): Promise<void> {
  const { cmd, args } = ns.wrap('nft', ['-f', '-']);
  const r = await runCommand(cmd, args, script);
  if (r.code !== 0) throw new NftError(`nft -f: ${r.stderr.trim() || `exit ${r.code}`}`);
}
