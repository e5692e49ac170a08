// The on-disk result cache, in libcni's layout (`<cacheDir>/results/<network>-<container>-<ifname>`,
// kind "cniCacheV1"), because DEL and CHECK need the ADD result and GC needs to know every attachment.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const CACHE_KIND = 'cniCacheV1';

/** One cache file's content, as libcni writes it (config is base64 like Go's []byte). */
export interface CacheEntry {
  kind: typeof CACHE_KIND;
  containerId: string;
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

/** What listing the cache tells about one attachment. */
export interface CachedAttachment {
  containerId: string;
  ifname: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  /** The configuration list text cached with the ADD. */
  config: string;
  result?: Record<string, unknown>;
}

export class ResultCache {
  constructor(readonly dir: string) {}

  get resultsDir(): string { return join(this.dir, 'results'); }

  path(networkName: string, containerId: string, ifname: string): string {
    return join(this.resultsDir, `${networkName}-${containerId}-${ifname}`);
  }

  async write(e: Omit<CacheEntry, 'kind' | 'config'> & { config: string }): Promise<void> {
    const entry: CacheEntry = { kind: CACHE_KIND, ...e, config: Buffer.from(e.config, 'utf8').toString('base64') };
    await mkdir(this.resultsDir, { recursive: true, mode: 0o700 });
    // Dot-prefixed temp file plus rename: readers never see half a file, and listing skips it.
    const tmp = join(this.resultsDir, `.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
    await rename(tmp, this.path(e.networkName, e.containerId, e.ifName));
  }

  /** The entry, or null when missing or not a cniCacheV1 file. */
  async read(networkName: string, containerId: string, ifname: string): Promise<CacheEntry | null> {
    return parseEntry(await readFile(this.path(networkName, containerId, ifname), 'utf8').catch(() => null));
  }

  async remove(networkName: string, containerId: string, ifname: string): Promise<void> {
    await rm(this.path(networkName, containerId, ifname), { force: true });
  }

  /** Every valid entry of a network, in file-name order. */
  async list(networkName: string): Promise<CachedAttachment[]> {
    let names: string[];
    try {
      names = (await readdir(this.resultsDir)).filter((n) => !n.startsWith('.')).sort();
    } catch {
      return [];
    }
    const out: CachedAttachment[] = [];
    for (const n of names) {
      const e = parseEntry(await readFile(join(this.resultsDir, n), 'utf8').catch(() => null));
      if (!e || e.networkName !== networkName || !e.containerId || !e.ifName) continue;
      out.push(toAttachment(e));
    }
    return out;
  }
}

function parseEntry(text: string | null): CacheEntry | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as CacheEntry;
    return v && typeof v === 'object' && v.kind === CACHE_KIND ? v : null;
  } catch {
    return null;
  }
}

export function toAttachment(e: CacheEntry): CachedAttachment {
  const a: CachedAttachment = {
    containerId: e.containerId, ifname: e.ifName, networkName: e.networkName,
    config: typeof e.config === 'string' ? Buffer.from(e.config, 'base64').toString('utf8') : '',
  };
  if (e.netns !== undefined) a.netns = e.netns;
  if (e.cniArgs) a.cniArgs = e.cniArgs;
  if (e.capabilityArgs) a.capabilityArgs = e.capabilityArgs;
  if (e.result) a.result = e.result;
  return a;
}
