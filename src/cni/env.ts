// The CNI_* environment a runtime hands the plugin, validated as the spec and libcni require.
import { statfsSync, statSync } from 'node:fs';
import { CniCode, CniError } from './errors.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface CniRequestEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  args: Map<string, string>;
  path: string[];
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
// Linux IFNAMSIZ is 16 with the terminating NUL.
const MAX_IFNAME = 15;

export function validateIfname(name: string, field: string, code: number): void {
  if (name.length === 0) throw new CniError(code, `${field} is empty`);
  if (name.length > MAX_IFNAME) {
    throw new CniError(code, `${field} "${name}" is ${name.length} characters long; interface names are at most ${MAX_IFNAME}`);
  }
  if (name === '.' || name === '..' || /[\/:\s]/.test(name)) {
    throw new CniError(code, `${field} "${name}" is not a valid interface name (no "/", ":", whitespace, "." or "..")`);
  }
}

export function validateContainerId(id: string, field: string, code: number): void {
  if (!id) throw new CniError(code, `${field} is empty`);
  if (!CONTAINER_ID.test(id)) {
    throw new CniError(code, `${field} "${id}" is invalid: it must start with a letter or digit and hold only letters, digits, "_", "." and "-"`);
  }
}

/** Parses CNI_ARGS ("K1=V1;K2=V2"); unknown keys are kept for the caller to ignore. */
export function parseCniArgs(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!raw) return out;
  for (const pair of raw.split(';')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnv, `CNI_ARGS: "${pair}" is not a KEY=VALUE pair`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

export function readEnv(env: NodeJS.ProcessEnv): CniRequestEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!command) throw new CniError(CniCode.InvalidEnv, 'CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.InvalidEnv, `CNI_COMMAND "${command}" is not one of ${COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  const req: CniRequestEnv = {
    command: cmd,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    args: new Map(),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
  if (cmd === 'ADD' || cmd === 'DEL' || cmd === 'CHECK') {
    if (!req.containerId) throw new CniError(CniCode.InvalidEnv, 'CNI_CONTAINERID is not set');
    validateContainerId(req.containerId, 'CNI_CONTAINERID', CniCode.InvalidEnv);
    if (!req.ifname) throw new CniError(CniCode.InvalidEnv, 'CNI_IFNAME is not set');
    validateIfname(req.ifname, 'CNI_IFNAME', CniCode.InvalidEnv);
    // DEL may come with an empty CNI_NETNS (ctr sends that once the task is gone).
    if (cmd !== 'DEL' && !req.netns) throw new CniError(CniCode.InvalidEnv, 'CNI_NETNS is not set');
    req.args = parseCniArgs(env.CNI_ARGS ?? '');
  }
  return req;
}

/** statfs(2) f_type of nsfs, the filesystem every namespace file (and its bind mounts) lives on. */
const NSFS_MAGIC = 0x6e736673;

/** What a path is, for a message: ip would block forever opening a FIFO, so say what it is instead. */
function describeFile(path: string): string {
  try {
    const st = statSync(path);
    if (st.isFIFO()) return 'a FIFO';
    if (st.isSocket()) return 'a socket';
    if (st.isDirectory()) return 'a directory';
    if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device file';
    return 'a file';
  } catch {
    return 'unreadable';
  }
}

/**
 * CNI_NETNS must name a network namespace before anything opens it: a FIFO there blocks every `ip`
 * that tries (the reference plugins refuse it the same way, "not a network namespace"). A missing
 * path is code 3 (the container is gone); anything else that is not nsfs is code 4, naming the value.
 */
export function checkNetnsPath(path: string): void {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CniError(CniCode.UnknownContainer, `CNI_NETNS "${path}": no such network namespace`);
    throw new CniError(CniCode.InvalidEnv, `CNI_NETNS "${path}": cannot be read: ${(err as Error).message}`);
  }
  if (type !== NSFS_MAGIC) {
    throw new CniError(CniCode.InvalidEnv, `CNI_NETNS "${path}" is not a network namespace (it is ${describeFile(path)})`);
  }
}
