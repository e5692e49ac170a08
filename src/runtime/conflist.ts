// Network configuration lists as a runtime reads them (SPEC section 1) and the per-plugin execution
// configuration it derives from them (SPEC section 3, "Deriving execution configuration").
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CniCode, CniError } from '../cni/errors.js';
import { RUNTIME_VERSIONS, compareVersions, isVersion } from './result.js';

/** One entry of `plugins`: at least a type; every other key passes through to the plugin. */
export type PluginConf = Record<string, unknown> & { type: string };

export interface NetworkConfigList {
  name: string;
  /** The version the runtime speaks with this list's plugins (chosen from cniVersions if given). */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  plugins: PluginConf[];
  /** The configuration text as loaded; cached with each attachment like libcni does. */
  bytes: string;
  /** Where the list came from (a file path, or "<inline>"). */
  source: string;
}

/** Extensions a conf dir is scanned for, as libcni does. */
export const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
type Json = Record<string, unknown>;

const bad = (source: string, field: string, why: string): CniError =>
  new CniError(CniCode.InvalidConfig, `${source}: ${field} ${why}`);

const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

/** libcni accepts booleans and the strings "true"/"false" for the disable* flags. */
function flag(obj: Json, key: string, source: string): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw bad(source, key, `must be a boolean, got ${JSON.stringify(v)}`);
}

/** cniVersions (spec 1.1.0) wins over cniVersion: the highest version both sides know. */
function pickVersion(obj: Json, source: string): string {
  if (obj.cniVersions !== undefined) {
    if (!Array.isArray(obj.cniVersions) || !obj.cniVersions.every((v) => typeof v === 'string')) {
      throw bad(source, 'cniVersions', 'must be a list of version strings');
    }
    const known = (obj.cniVersions as string[]).filter((v) => (RUNTIME_VERSIONS as readonly string[]).includes(v));
    if (known.length > 0) return known.sort(compareVersions)[known.length - 1];
    if (obj.cniVersion === undefined) {
      throw bad(source, 'cniVersions', `has no version this runtime supports (${RUNTIME_VERSIONS.join(', ')})`);
    }
  }
  if (obj.cniVersion === undefined || obj.cniVersion === '') throw bad(source, 'cniVersion', 'is missing');
  if (!isVersion(obj.cniVersion)) throw bad(source, 'cniVersion', `${JSON.stringify(obj.cniVersion)} is not a version like "1.0.0"`);
  if (!(RUNTIME_VERSIONS as readonly string[]).includes(obj.cniVersion)) {
    throw new CniError(CniCode.IncompatibleVersion, `${source}: cniVersion "${obj.cniVersion}" is not supported by this runtime`);
  }
  return obj.cniVersion;
}

function checkName(obj: Json, source: string): string {
  if (obj.name === undefined || obj.name === '') throw bad(source, 'name', 'is missing');
  if (typeof obj.name !== 'string' || !NAME_RE.test(obj.name)) {
    throw bad(source, 'name', `${JSON.stringify(obj.name)} must start with a letter or digit and hold only letters, digits, "_", "." and "-"`);
  }
  return obj.name;
}

/** `prefix` is the plugin's place in the file ("plugins[1]"), or "" for a single .conf. */
function checkPlugin(p: unknown, prefix: string, source: string): PluginConf {
  const field = (key: string) => (prefix ? `${prefix}.${key}` : key);
  if (!isObject(p)) throw bad(source, prefix || 'configuration', 'must be an object');
  if (p.type === undefined || p.type === '') throw bad(source, field('type'), 'is missing');
  if (typeof p.type !== 'string' || /[/\\]/.test(p.type) || p.type === '.' || p.type === '..') {
    throw bad(source, field('type'), `${JSON.stringify(p.type)} is not a plugin binary name`);
  }
  if (p.capabilities !== undefined) {
    if (!isObject(p.capabilities) || !Object.values(p.capabilities).every((v) => typeof v === 'boolean')) {
      throw bad(source, field('capabilities'), 'must map capability names to booleans');
    }
  }
  return p as PluginConf;
}

/** A parsed configuration list (object with plugins[]) checked and normalised. */
export function confListFromObject(obj: unknown, source = '<inline>', bytes?: string): NetworkConfigList {
  if (!isObject(obj)) throw bad(source, 'configuration', 'must be a JSON object');
  const name = checkName(obj, source);
  const cniVersion = pickVersion(obj, source);
  if (!Array.isArray(obj.plugins)) throw bad(source, 'plugins', obj.plugins === undefined ? 'is missing' : 'must be a list');
  if (obj.plugins.length === 0) throw bad(source, 'plugins', 'is empty');
  const plugins = obj.plugins.map((p, i) => checkPlugin(p, `plugins[${i}]`, source));
  return {
    name, cniVersion, plugins, source,
    disableCheck: flag(obj, 'disableCheck', source),
    disableGC: flag(obj, 'disableGC', source),
    bytes: bytes ?? JSON.stringify(obj),
  };
}

/** A single plugin configuration (a .conf) turned into a one-plugin list, as libcni does. */
export function confListFromSingle(obj: unknown, source = '<inline>'): NetworkConfigList {
  if (!isObject(obj)) throw bad(source, 'configuration', 'must be a JSON object');
  const name = checkName(obj, source);
  const cniVersion = pickVersion(obj, source);
  const plugin = checkPlugin(obj, '', source);
  return {
    name, cniVersion, plugins: [plugin], source,
    disableCheck: flag(obj, 'disableCheck', source),
    disableGC: flag(obj, 'disableGC', source),
    bytes: JSON.stringify({ cniVersion, name, plugins: [plugin] }),
  };
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, `${source}: not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Parses configuration text: a list when it has `plugins` (or `kind` says so), a single plugin
 * configuration otherwise. `kind` comes from the file extension when loading from disk.
 */
export function parseConfig(text: string, source = '<inline>', kind: 'list' | 'single' | 'auto' = 'auto'): NetworkConfigList {
  const obj = parseJson(text, source);
  const asList = kind === 'list' || (kind === 'auto' && isObject(obj) && 'plugins' in obj);
  return asList ? confListFromObject(obj, source, text) : confListFromSingle(obj, source);
}

/** Loads a .conflist (a list), a .conf (a single plugin) or a .json (either). */
export function loadConfFile(path: string): NetworkConfigList {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(CniCode.IoFailure, `${path}: cannot read: ${(err as Error).message}`);
  }
  const ext = extname(path);
  return parseConfig(text, path, ext === '.conflist' ? 'list' : ext === '.conf' ? 'single' : 'auto');
}

/** The configuration files of a conf dir, lexically sorted. */
export function confFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new CniError(CniCode.IoFailure, `${dir}: cannot read conf dir: ${(err as Error).message}`);
  }
  return entries.filter((e) => CONF_EXTENSIONS.includes(extname(e))).sort().map((e) => join(dir, e));
}

/**
 * Loads from a conf dir: the lexically first configuration file (what containerd uses as its
 * default network), or the first file whose network name is `name`.
 */
export function loadConfDir(dir: string, name?: string): NetworkConfigList {
  const files = confFiles(dir);
  if (files.length === 0) throw new CniError(CniCode.InvalidConfig, `${dir}: no network configuration (${CONF_EXTENSIONS.join(', ')}) found`);
  if (name === undefined) return loadConfFile(files[0]);
  for (const f of files) {
    const list = loadConfFile(f);
    if (list.name === name) return list;
  }
  throw new CniError(CniCode.InvalidConfig, `${dir}: no network configuration named "${name}"`);
}

/** A file (any of the extensions) or a conf dir (see loadConfDir); synchronous because configs are small. */
export function loadConfList(path: string, name?: string): NetworkConfigList {
  let isDir = false;
  try { isDir = statSync(path).isDirectory(); } catch { /* loadConfFile reports it */ }
  if (isDir) return loadConfDir(path, name);
  const list = loadConfFile(path);
  if (name !== undefined && list.name !== name) {
    throw new CniError(CniCode.InvalidConfig, `${path}: network is "${list.name}", not "${name}"`);
  }
  return list;
}

export interface DeriveOptions {
  /** The previous result, already in the list's cniVersion. */
  prevResult?: unknown;
  /** Capability arguments the runtime was given; only those the plugin declares are passed. */
  capabilityArgs?: Record<string, unknown>;
  /** Further runtime-generated keys (e.g. "cni.dev/valid-attachments" for GC). */
  extra?: Record<string, unknown>;
}

/** The runtimeConfig a plugin gets: the capabilities it declares true that the runtime was given. */
export function runtimeConfigFor(plugin: PluginConf, capabilityArgs: Record<string, unknown> = {}): Record<string, unknown> {
  const caps = isObject(plugin.capabilities) ? plugin.capabilities : {};
  const rc: Record<string, unknown> = {};
  for (const [cap, enabled] of Object.entries(caps)) {
    if (enabled === true && Object.prototype.hasOwnProperty.call(capabilityArgs, cap)) rc[cap] = capabilityArgs[cap];
  }
  return rc;
}

/**
 * The JSON a plugin reads on stdin: its own object, minus `capabilities` (the spec says the runtime
 * removes it), plus the list's name and cniVersion, runtimeConfig and prevResult when there are any.
 */
export function derivePluginConfig(list: Pick<NetworkConfigList, 'name' | 'cniVersion'>, plugin: PluginConf, opts: DeriveOptions = {}): Record<string, unknown> {
  const { capabilities: _caps, ...rest } = plugin;
  const out: Record<string, unknown> = { ...rest, name: list.name, cniVersion: list.cniVersion };
  const rc = runtimeConfigFor(plugin, opts.capabilityArgs);
  if (Object.keys(rc).length > 0) out.runtimeConfig = rc;
  if (opts.prevResult !== undefined && opts.prevResult !== null) out.prevResult = opts.prevResult;
  if (opts.extra) Object.assign(out, opts.extra);
  return out;
}
