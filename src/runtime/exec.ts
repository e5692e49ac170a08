// Runs one CNI plugin binary the way the spec's execution protocol says: parameters in a minimal
// environment, configuration on stdin, a result or an error object on stdout.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CniCode, CniError } from '../cni/errors.js';
import { LATEST_VERSION } from './result.js';

/** Code for failures on the runtime's side (plugin not found, no JSON error, bad output), as libcni uses 999. */
export const RUNTIME_FAILURE = 999;

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

export interface ExecOptions {
  /** Directories searched for plugin binaries, in order; also passed as CNI_PATH. */
  pluginDirs: string[];
  /** PATH given to plugins (they run e.g. iptables); defaults to the runtime's own PATH. */
  path?: string;
  /** Prefix for the command line, e.g. ['nsenter', '--net=/run/netns/node1']. */
  wrap?: string[];
  /** Kill the plugin after this long (no limit when unset). */
  timeoutMs?: number;
}

/** Attachment parameters of one call; VERSION, GC and STATUS have none. */
export interface Invocation {
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: [string, string][];
}

/** CNI_ARGS: "K1=V1;K2=V2". Keys and values must not contain the separators. */
export function formatCniArgs(args: [string, string][] = []): string {
  for (const [k, v] of args) {
    if (!k || /[=;]/.test(k) || /;/.test(v)) {
      throw new CniError(CniCode.InvalidEnv, `CNI_ARGS entry ${JSON.stringify(`${k}=${v}`)}: keys must be non-empty without "=" or ";", values without ";"`);
    }
  }
  return args.map(([k, v]) => `${k}=${v}`).join(';');
}

/** The plugin's whole environment: PATH and the CNI_* parameters, nothing inherited. */
export function pluginEnv(opts: ExecOptions, inv: Invocation): Record<string, string> {
  const env: Record<string, string> = {
    PATH: opts.path ?? process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: inv.command,
    CNI_PATH: opts.pluginDirs.join(':'),
  };
  if (inv.command === 'ADD' || inv.command === 'DEL' || inv.command === 'CHECK') {
    env.CNI_CONTAINERID = inv.containerId ?? '';
    env.CNI_NETNS = inv.netns ?? '';
    env.CNI_IFNAME = inv.ifname ?? '';
    env.CNI_ARGS = formatCniArgs(inv.args);
  }
  return env;
}

/** The first executable file named `type` in the plugin dirs. */
export async function findPlugin(type: string, dirs: string[]): Promise<string> {
  if (!type || /[/\\]/.test(type)) throw new CniError(CniCode.InvalidConfig, `invalid plugin type ${JSON.stringify(type)}`);
  for (const dir of dirs) {
    const p = join(dir, type);
    try {
      if ((await stat(p)).isFile()) {
        await access(p, constants.X_OK);
        return p;
      }
    } catch { /* not here */ }
  }
  throw new CniError(RUNTIME_FAILURE, `failed to find plugin "${type}" in path [${dirs.join(' ')}]`);
}

interface Outcome { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean }

function run(argv: string[], env: Record<string, string>, input: string, timeoutMs?: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    let timedOut = false;
    const timer = timeoutMs ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs) : undefined;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => { /* the plugin may exit without reading stdin */ });
    child.on('error', (e) => { if (timer) clearTimeout(timer); reject(e); });
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input);
  });
}

function parseJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return undefined; }
}

/** A plugin's error object (code, msg, details) if stdout holds one. */
function pluginError(stdout: string): { code: number; msg: string; details: string } | undefined {
  const v = parseJson(stdout.trim()) as Record<string, unknown> | undefined;
  if (!v || typeof v !== 'object' || typeof v.code !== 'number') return undefined;
  return { code: v.code, msg: typeof v.msg === 'string' ? v.msg : '', details: typeof v.details === 'string' ? v.details : '' };
}

/**
 * Runs plugin `type` with `config` on stdin. Returns the parsed stdout (undefined when a command
 * without a result printed nothing usable). Throws a CniError carrying the plugin's code, msg and
 * details, or RUNTIME_FAILURE with stderr when the plugin gave no error object.
 */
export async function execPlugin(opts: ExecOptions, type: string, inv: Invocation, config: unknown): Promise<unknown> {
  const pluginPath = await findPlugin(type, opts.pluginDirs);
  const env = pluginEnv(opts, inv);
  const argv = [...(opts.wrap ?? []), pluginPath];
  const what = `plugin ${type} failed (${inv.command})`;
  let o: Outcome;
  try {
    o = await run(argv, env, JSON.stringify(config), opts.timeoutMs);
  } catch (err) {
    throw new CniError(RUNTIME_FAILURE, `${what}: cannot start ${argv[0]}: ${(err as Error).message}`, '', { cause: err });
  }
  if (o.timedOut) throw new CniError(RUNTIME_FAILURE, `${what}: timed out after ${opts.timeoutMs} ms`, o.stderr.trim());
  if (o.status !== 0) {
    const pe = pluginError(o.stdout);
    if (pe) throw new CniError(pe.code, `${what}: ${pe.msg || 'no message'}`, pe.details);
    const how = o.signal ? `killed by ${o.signal}` : `exit status ${o.status}`;
    const text = o.stderr.trim() || o.stdout.trim() || 'no error message';
    throw new CniError(RUNTIME_FAILURE, `${what}: ${how}: ${text}`, o.stderr.trim());
  }
  const parsed = o.stdout.trim() ? parseJson(o.stdout) : undefined;
  const needsResult = inv.command === 'ADD' || inv.command === 'VERSION';
  if (needsResult && (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))) {
    throw new CniError(RUNTIME_FAILURE, `${what}: expected a JSON result on stdout, got ${JSON.stringify(o.stdout.slice(0, 200))}`, o.stderr.trim());
  }
  return parsed;
}

/** VERSION: the spec versions the plugin supports (a plugin answering without cniVersion is 0.1.0-only, as libcni reads it). */
export async function pluginVersions(opts: ExecOptions, type: string): Promise<string[]> {
  const out = (await execPlugin(opts, type, { command: 'VERSION' }, { cniVersion: LATEST_VERSION })) as Record<string, unknown>;
  if (Array.isArray(out.supportedVersions) && out.supportedVersions.every((v) => typeof v === 'string')) {
    return out.supportedVersions as string[];
  }
  if (out.cniVersion === undefined) return ['0.1.0'];
  throw new CniError(RUNTIME_FAILURE, `plugin ${type} failed (VERSION): no supportedVersions in ${JSON.stringify(out)}`);
}
