// A CNI plugin under test and one timed call of it, made the way a container runtime makes it:
// the plugin runs inside the bench's "node" netns (nsenter --net=...), its environment holds only
// PATH and CNI_*, and the network configuration arrives on stdin. The wall time runs from just
// before spawn until the process has exited.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchNamespaces } from './netns.js';
import { run } from './netns.js';

/** PATH a runtime such as containerd typically has, plus the directory of this node binary. */
export function runtimePath(): string {
  const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  const nodeDir = dirname(process.execPath);
  if (!dirs.includes(nodeDir)) dirs.push(nodeDir);
  return dirs.join(':');
}

/** Absolute path of a program found on PATH (spawn resolves names through the child's env). */
export function which(prog: string): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(runtimePath().split(':'))) {
    if (!dir) continue;
    try {
      accessSync(`${dir}/${prog}`, constants.X_OK);
      return `${dir}/${prog}`;
    } catch { /* next */ }
  }
  throw new Error(`${prog} not found on PATH`);
}

/** flatnet: the shim answered by a warm server in its netns; flatnet-cold: the shim with no server, so the Node plugin. */
export type PluginKey = 'reference' | 'flatnet' | 'flatnet-cold';

export interface PluginUnderTest {
  key: PluginKey;
  label: string;
  /** The executable started for every call. */
  exe: string;
  /** CNI_PATH: the directory of the plugin (the reference bridge finds host-local there). */
  cniPath: string;
  /** Named netns the plugin runs in; its bridge lives there. */
  nodeNetns: string;
  /** Network configuration (stdin), without runtime-added fields. */
  config: Record<string, unknown>;
}

export interface CallResult {
  ms: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class PluginCallError extends Error {
  constructor(plugin: PluginUnderTest, command: string, what: string, env: Record<string, string>, r?: CallResult) {
    super([
      `${plugin.label} ${command} failed: ${what}`,
      `  exe:    ${plugin.exe} (in netns ${plugin.nodeNetns})`,
      `  env:    ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`,
      `  config: ${JSON.stringify(plugin.config)}`,
      r ? `  exit:   ${r.code ?? `signal ${r.signal}`} after ${r.ms.toFixed(1)} ms` : '',
      r ? `  stdout: ${r.stdout.trim() || '(empty)'}` : '',
      r ? `  stderr: ${r.stderr.trim() || '(empty)'}` : '',
    ].filter(Boolean).join('\n'));
  }
}

export interface Pod {
  netns: string;
  netnsPath: string;
  containerId: string;
  /** Set by a successful ADD: the pod's address with prefix length. */
  address?: string;
}

let nsenterPath: string | undefined;

/** Starts the plugin once and measures it. Never rejects for a plugin failure; the caller checks. */
export function invoke(ns: BenchNamespaces, plugin: PluginUnderTest, env: Record<string, string>, stdin: string): Promise<CallResult> {
  nsenterPath ??= which('nsenter');
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let ms = NaN;
    const t0 = process.hrtime.bigint();
    const child = spawn(nsenterPath!, [`--net=${ns.path(plugin.nodeNetns)}`, plugin.exe], {
      env, stdio: ['pipe', 'pipe', 'pipe'],
    });
    ns.children.add(child);
    child.on('exit', () => { ms = Number(process.hrtime.bigint() - t0) / 1e6; });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => { ns.children.delete(child); reject(e); });
    child.on('close', (code, signal) => {
      ns.children.delete(child);
      resolve({
        ms, code, signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => { /* a plugin may exit before reading stdin */ });
    child.stdin.end(stdin);
  });
}

function cniEnv(plugin: PluginUnderTest, command: 'ADD' | 'DEL', pod: Pod): Record<string, string> {
  return {
    PATH: runtimePath(),
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: pod.netnsPath,
    CNI_IFNAME: 'eth0',
    CNI_PATH: plugin.cniPath,
  };
}

export function newPod(ns: BenchNamespaces, netns: string): Pod {
  return { netns, netnsPath: ns.path(netns), containerId: randomBytes(32).toString('hex') };
}

/** ADD: exit 0 and a result with an address, else PluginCallError. Returns the wall time in ms. */
export async function add(ns: BenchNamespaces, plugin: PluginUnderTest, pod: Pod): Promise<number> {
  const env = cniEnv(plugin, 'ADD', pod);
  const r = await invoke(ns, plugin, env, JSON.stringify(plugin.config));
  if (r.code !== 0) throw new PluginCallError(plugin, 'ADD', 'non-zero exit', env, r);
  let result: { ips?: Array<{ address?: string }> };
  try {
    result = JSON.parse(r.stdout);
  } catch {
    throw new PluginCallError(plugin, 'ADD', 'stdout is not a JSON result', env, r);
  }
  const address = result.ips?.[0]?.address;
  if (typeof address !== 'string' || !address.includes('/')) {
    throw new PluginCallError(plugin, 'ADD', 'result has no ips[0].address', env, r);
  }
  pod.address = address;
  return r.ms;
}

/** DEL: exit 0, else PluginCallError. Returns the wall time in ms. */
export async function del(ns: BenchNamespaces, plugin: PluginUnderTest, pod: Pod): Promise<number> {
  const env = cniEnv(plugin, 'DEL', pod);
  const r = await invoke(ns, plugin, env, JSON.stringify(plugin.config));
  if (r.code !== 0) throw new PluginCallError(plugin, 'DEL', 'non-zero exit', env, r);
  return r.ms;
}

/** Untimed check after ADD: eth0 in the pod netns is up and carries the address of the result. */
export async function verifyAdded(plugin: PluginUnderTest, pod: Pod): Promise<void> {
  const out = await run('ip', ['-n', pod.netns, '-j', 'addr', 'show', 'dev', 'eth0']);
  const links = JSON.parse(out) as Array<{ operstate?: string; flags?: string[]; addr_info?: Array<{ local: string; prefixlen: number }> }>;
  const have = (links[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
  if (!have.includes(pod.address!)) {
    throw new Error(`${plugin.label}: after ADD, eth0 in ${pod.netns} has [${have.join(', ')}], not ${pod.address}`);
  }
  if (!links[0]?.flags?.includes('UP')) throw new Error(`${plugin.label}: after ADD, eth0 in ${pod.netns} is not up`);
}

/** Untimed check after DEL: the pod netns has no eth0 any more. */
export async function verifyDeleted(plugin: PluginUnderTest, pod: Pod): Promise<void> {
  const out = await run('ip', ['-n', pod.netns, '-j', 'link', 'show']);
  const links = JSON.parse(out) as Array<{ ifname?: string }>;
  if (links.some((l) => l.ifname === 'eth0')) throw new Error(`${plugin.label}: after DEL, ${pod.netns} still has eth0`);
}
