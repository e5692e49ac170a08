// The CNI_* environment a runtime hands the plugin, validated as the spec and libcni require.
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
