// PLACEHOLDER until the nft branch merges: the brief's types, so the policy renderer compiles.
export interface NftBlock { kind: 'set' | 'map' | 'chain'; name: string; body: string[]; listing?: string[] }
export interface NftTable { family: 'ip' | 'ip6' | 'inet'; name: string; blocks: NftBlock[]; elements: Map<string, Map<string, string>> }
