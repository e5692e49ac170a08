// One CNI request in, one answer out: the plugin's whole contract with a runtime, as a function, so
// the same code serves a plugin process and (later) a warm agent on a socket.
import { asCniError, CniCode, CniError } from './errors.js';
import { readEnv } from './env.js';
import { decodeJson, parseConf, readVersion } from './config.js';
import { isSupportedVersion, LATEST_VERSION, requireVersionAtLeast, resultToVersion, SUPPORTED_VERSIONS } from './version.js';
import { cmdAdd } from './add.js';
import type { CniResult } from './types.js';
import { cmdDel } from './del.js';
import { cmdCheck } from './check.js';
import { cmdStatus } from './status.js';
import { cmdGc } from './gc.js';

export interface CniAnswer {
  stdout: string;
  exitCode: number;
}

/** A network configuration is a few KiB (a long prevResult a few hundred); beyond this nobody meant it. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** The version to answer an error in: the one asked for when it can be read and is ours. */
function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return isSupportedVersion(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

/** The version a configuration too large to parse asks for, read from its first bytes. */
export function versionFromHead(head: string): string {
  const v = /"cniVersion"\s*:\s*"([^"\\]*)"/.exec(head)?.[1];
  return isSupportedVersion(v) ? v : LATEST_VERSION;
}

/** The answer to a configuration over MAX_CONFIG_BYTES: the same from the plugin process and the warm server. */
export function oversizeAnswer(bytes: number, head: string): CniAnswer {
  const e = new CniError(CniCode.InvalidConfig,
    `network configuration is ${bytes} bytes; flatnet-cni reads at most ${MAX_CONFIG_BYTES} (16 MiB)`);
  return { stdout: JSON.stringify(e.toJSON(versionFromHead(head))), exitCode: 1 };
}

/** In-process work around a request (the warm server's, for the agent's features); none in a plugin process. */
export interface RequestHooks {
  /** After a successful ADD, before it answers; an error fails the ADD (code 999) and undoes it. */
  afterAdd?(result: CniResult): Promise<void>;
  /** After a successful DEL; an error fails the DEL (code 999), so the runtime calls it again. */
  afterDel?(): Promise<void>;
}

/** A hook's failure as the runtime reads it: code 999, the hook named, its message kept. */
async function runHook(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw new CniError(CniCode.HookFailed, `${name}: ${err instanceof Error ? err.message : String(err)}`, '', { cause: err });
  }
}

async function dispatch(envVars: NodeJS.ProcessEnv, stdin: string, hooks: RequestHooks): Promise<string> {
  const env = readEnv(envVars);
  if (env.command === 'VERSION') {
    let asked: string = LATEST_VERSION;
    if (stdin.trim()) {
      const v = decodeJson(stdin).cniVersion;
      if (isSupportedVersion(v)) asked = v;
    }
    return JSON.stringify({ cniVersion: asked, supportedVersions: SUPPORTED_VERSIONS });
  }
  const raw = decodeJson(stdin);
  const version = readVersion(raw);
  switch (env.command) {
    case 'ADD': {
      const afterAdd = hooks.afterAdd?.bind(hooks);
      const result = await cmdAdd(env, parseConf(raw), afterAdd && ((r) => runHook('after ADD', () => afterAdd(r))));
      return JSON.stringify(resultToVersion(result, version));
    }
    case 'DEL': {
      await cmdDel(env, parseConf(raw));
      const afterDel = hooks.afterDel?.bind(hooks);
      if (afterDel) await runHook('after DEL', afterDel);
      return '';
    }
    case 'CHECK':
      requireVersionAtLeast(version, '0.4.0', 'CHECK');
      await cmdCheck(env, parseConf(raw));
      return '';
    case 'STATUS':
      requireVersionAtLeast(version, '1.1.0', 'STATUS');
      cmdStatus(raw);
      return '';
    case 'GC':
      requireVersionAtLeast(version, '1.1.0', 'GC');
      await cmdGc(parseConf(raw));
      return '';
  }
  throw new CniError(CniCode.InvalidEnv, `CNI_COMMAND "${env.command}" is not handled`);
}

export async function handleRequest(envVars: NodeJS.ProcessEnv, stdin: string, hooks: RequestHooks = {}): Promise<CniAnswer> {
  const bytes = Buffer.byteLength(stdin);
  if (bytes > MAX_CONFIG_BYTES) return oversizeAnswer(bytes, stdin.slice(0, 65536));
  try {
    return { stdout: await dispatch(envVars, stdin, hooks), exitCode: 0 };
  } catch (err) {
    const e = asCniError(err);
    return { stdout: JSON.stringify(e.toJSON(errorVersion(stdin))), exitCode: 1 };
  }
}
