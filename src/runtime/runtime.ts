// A CNI runtime (what libcni does for containerd): runs a network configuration list's plugins for
// ADD, DEL, CHECK, STATUS and GC, and keeps each attachment's ADD result in the on-disk cache.
import { CniCode, CniError, asCniError } from '../cni/errors.js';
import { validateContainerId, validateIfname } from '../cni/env.js';
import type { Attachment, CniResult } from '../cni/types.js';
import { ResultCache, type CachedAttachment } from './cache.js';
import { derivePluginConfig, type NetworkConfigList } from './conflist.js';
import { RUNTIME_FAILURE, execPlugin, formatCniArgs, pluginVersions, type CniCommand, type ExecOptions } from './exec.js';
import { asCniResult, convertResult, versionAtLeast } from './result.js';

export interface RuntimeOptions {
  pluginDirs: string[];
  cacheDir: string;
  /** Command prefix for every plugin, e.g. ['nsenter', '--net=/run/netns/node1']. */
  wrap?: string[];
  /** PATH for plugins; defaults to process.env.PATH. */
  path?: string;
  /** Kill a plugin after this long (no limit when unset). */
  timeoutMs?: number;
}

/** The attachment parameters of one ADD/DEL/CHECK. */
export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifname: string;
  args?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
}

/** Several plugin failures of one operation; code and the first line come from the first failure. */
export class CniAggregateError extends CniError {
  readonly errors: CniError[];
  constructor(what: string, errors: CniError[]) {
    super(errors[0].code, `${what}: ${errors.map((e) => e.message).join('; ')}`, errors.map((e) => e.details).filter(Boolean).join('\n'),
      { cause: new AggregateError(errors) });
    this.errors = errors;
  }
}

type Json = Record<string, unknown>;

/** The spec's rules for container ID, interface and network name (they also name the cache file). */
export function validateAttachment(networkName: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname' | 'args'>): void {
  validateContainerId(networkName, 'network name', CniCode.InvalidConfig);
  validateContainerId(rt.containerId, 'container ID', CniCode.InvalidEnv);
  validateIfname(rt.ifname, 'interface name', CniCode.InvalidEnv);
  formatCniArgs(rt.args);
}

export class CniRuntime {
  readonly cache: ResultCache;
  private readonly exec: ExecOptions;
  /** The spec forbids parallel operations on one container: one queue per container ID. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(readonly options: RuntimeOptions) {
    this.cache = new ResultCache(options.cacheDir);
    this.exec = { pluginDirs: options.pluginDirs, path: options.path, wrap: options.wrap, timeoutMs: options.timeoutMs };
  }

  private serial<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.queues.get(containerId) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    const tail = mine.catch(() => undefined);
    this.queues.set(containerId, tail);
    void tail.then(() => { if (this.queues.get(containerId) === tail) this.queues.delete(containerId); });
    return mine;
  }

  private run(list: NetworkConfigList, index: number, command: CniCommand, rt: RuntimeConf | undefined, prevResult?: unknown, extra?: Json): Promise<unknown> {
    const plugin = list.plugins[index];
    const config = derivePluginConfig(list, plugin, { prevResult, capabilityArgs: rt?.capabilityArgs, extra });
    const inv = rt ? { command, containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, args: rt.args } : { command };
    return execPlugin(this.exec, plugin.type, inv, config);
  }

  /** ADD every plugin in order, each getting the previous result; the final result is cached. */
  async addNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<CniResult> {
    validateAttachment(list.name, rt);
    return this.serial(rt.containerId, async () => {
      let result: Json | undefined;
      for (let i = 0; i < list.plugins.length; i++) {
        try {
          const out = await this.run(list, i, 'ADD', rt, result);
          // Plugins answer in the list's version; converting covers one that does not.
          result = convertResult(out, list.cniVersion);
        } catch (err) {
          await this.rollback(list, rt, i, result);
          throw asCniError(err, RUNTIME_FAILURE);
        }
      }
      try {
        await this.cache.write({
          containerId: rt.containerId, ifName: rt.ifname, networkName: list.name, netns: rt.netns,
          cniArgs: rt.args, capabilityArgs: rt.capabilityArgs, config: list.bytes, result,
        });
      } catch (err) {
        await this.rollback(list, rt, list.plugins.length - 1, result);
        throw new CniError(CniCode.IoFailure, `failed to cache the result of network "${list.name}": ${(err as Error).message}`, '', { cause: err });
      }
      return asCniResult(result!);
    });
  }

  /**
   * Undoes a failed ADD: DEL, in reverse order, for the plugins that ran (the failed one too, since
   * it may have done part of its work), with the last good result; errors are ignored.
   */
  private async rollback(list: NetworkConfigList, rt: RuntimeConf, lastIndex: number, result: Json | undefined): Promise<void> {
    const prev = versionAtLeast(list.cniVersion, '0.4.0') ? result : undefined;
    for (let i = lastIndex; i >= 0; i--) {
      try { await this.run(list, i, 'DEL', rt, prev); } catch { /* best effort */ }
    }
  }

  /** The cached ADD result as prevResult in the list's version, or undefined (none, or unreadable). */
  private async cachedPrevResult(list: NetworkConfigList, rt: RuntimeConf): Promise<Json | undefined> {
    const entry = await this.cache.read(list.name, rt.containerId, rt.ifname);
    if (!entry?.result) return undefined;
    try {
      return convertResult(entry.result, list.cniVersion);
    } catch {
      return undefined;
    }
  }

  /**
   * DEL every plugin in reverse order with the cached result as prevResult (spec >= 0.4.0). Runs all
   * plugins even when some fail and then throws them together; the cache entry goes only on success,
   * so a retried DEL still has the result.
   */
  async delNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    validateAttachment(list.name, rt);
    return this.serial(rt.containerId, async () => {
      const prev = versionAtLeast(list.cniVersion, '0.4.0') ? await this.cachedPrevResult(list, rt) : undefined;
      const errors: CniError[] = [];
      for (let i = list.plugins.length - 1; i >= 0; i--) {
        try { await this.run(list, i, 'DEL', rt, prev); } catch (err) { errors.push(asCniError(err, RUNTIME_FAILURE)); }
      }
      if (errors.length) throw new CniAggregateError(`DEL of network "${list.name}" failed`, errors);
      await this.cache.remove(list.name, rt.containerId, rt.ifname);
    });
  }

  /** CHECK every plugin in order against the cached ADD result; the first failure is thrown. */
  async checkNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    if (!versionAtLeast(list.cniVersion, '0.4.0')) {
      throw new CniError(CniCode.IncompatibleVersion, `configuration version "${list.cniVersion}" does not support the CHECK command`);
    }
    if (list.disableCheck) return;
    validateAttachment(list.name, rt);
    return this.serial(rt.containerId, async () => {
      const prev = await this.cachedPrevResult(list, rt);
      if (!prev) {
        throw new CniError(CniCode.UnknownContainer, `no cached result for network "${list.name}", container "${rt.containerId}", interface "${rt.ifname}": CHECK needs a previous ADD`);
      }
      for (let i = 0; i < list.plugins.length; i++) await this.run(list, i, 'CHECK', rt, prev);
    });
  }

  /** STATUS of every plugin (spec >= 1.1.0; older lists have no STATUS, so they pass). */
  async getStatusNetworkList(list: NetworkConfigList): Promise<void> {
    if (!versionAtLeast(list.cniVersion, '1.1.0')) return;
    for (let i = 0; i < list.plugins.length; i++) await this.run(list, i, 'STATUS', undefined);
  }

  /**
   * GC as libcni does it: first DEL every cached attachment of this network that is not in
   * `validAttachments` (so plugins without GC release them too), then, for spec >= 1.1.0, send GC
   * with cni.dev/valid-attachments to every plugin. Nothing happens when the list sets disableGC.
   */
  async gcNetworkList(list: NetworkConfigList, validAttachments: Attachment[]): Promise<void> {
    if (list.disableGC) return;
    const valid = new Set(validAttachments.map((a) => `${a.containerId}\u0000${a.ifname}`));
    const errors: CniError[] = [];
    for (const a of await this.cache.list(list.name)) {
      if (valid.has(`${a.containerId}\u0000${a.ifname}`)) continue;
      const rt: RuntimeConf = { containerId: a.containerId, ifname: a.ifname, netns: a.netns ?? '', args: a.cniArgs, capabilityArgs: a.capabilityArgs };
      try {
        await this.delNetworkList(list, rt);
      } catch (err) {
        const e = asCniError(err, RUNTIME_FAILURE);
        errors.push(new CniError(e.code, `failed to delete stale attachment ${a.containerId} ${a.ifname}: ${e.message}`, e.details));
      }
    }
    if (versionAtLeast(list.cniVersion, '1.1.0')) {
      const extra = { 'cni.dev/valid-attachments': validAttachments.map((a) => ({ containerID: a.containerId, ifname: a.ifname })) };
      for (let i = 0; i < list.plugins.length; i++) {
        try { await this.run(list, i, 'GC', undefined, undefined, extra); } catch (err) { errors.push(asCniError(err, RUNTIME_FAILURE)); }
      }
    }
    if (errors.length) throw new CniAggregateError(`GC of network "${list.name}" failed`, errors);
  }

  /** The cached ADD result of an attachment, or null. */
  async getCachedResult(networkName: string, containerId: string, ifname: string): Promise<CniResult | null> {
    validateAttachment(networkName, { containerId, ifname });
    const entry = await this.cache.read(networkName, containerId, ifname);
    return entry?.result ? asCniResult(entry.result) : null;
  }

  /** Every cached attachment of a network. */
  async listCachedAttachments(networkName: string): Promise<CachedAttachment[]> {
    return this.cache.list(networkName);
  }

  /** VERSION: the spec versions a plugin supports. */
  async version(pluginType: string): Promise<string[]> {
    return pluginVersions(this.exec, pluginType);
  }
}
