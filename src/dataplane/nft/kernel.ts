// What an nft applier needs of the kernel, as an interface: the real nft in a namespace (below), or
// the in-memory fake (fake.ts) that lets unit tests count operations without root.
import { nftApply, nftListTable } from '../../kernel/nft.js';
import type { Netns } from '../../kernel/netns.js';

export interface NftKernel {
  /** One `nft -f` transaction: all of it applies or none; throws NftError. */
  apply(script: string): Promise<void>;
  /** `nft list table` text, undefined if the table is absent. */
  listTable(family: string, name: string): Promise<string | undefined>;
}

/** The real nftables of one network namespace. */
export class NetnsNftKernel implements NftKernel {
  constructor(private readonly ns: Netns) {}

  apply(script: string): Promise<void> { return nftApply(this.ns, script); }

  listTable(family: string, name: string): Promise<string | undefined> { return nftListTable(this.ns, family, name); }

  toString(): string { return `nft in ${this.ns}`; }
}
