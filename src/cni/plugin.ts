// One CNI request in, one answer out: the plugin's whole contract with a runtime, as a function, so
// the same code serves a plugin process and (later) a warm agent on a socket.
import { asCniError, CniCode, CniError } from './errors.js';
import { readEnv } from './env.js';
import { decodeJson, parseConf, readVersion } from './config.js';
import { isSupportedVersion, LATEST_VERSION, requireVersionAtLeast, resultToVersion, SUPPORTED_VERSIONS } from './version.js';
import { cmdAdd } from './add.js';
import { cmdDel } from './del.js';
import { cmdCheck } from './check.js';
import { cmdStatus } from './status.js';
import { cmdGc } from './gc.js';

export interface CniAnswer {
  stdout: string;
  exitCode: number;
}

/** The version to answer an error in: the one asked for when it can be read and is ours. */
function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return isSupportedVersion(v) ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

async function dispatch(envVars: NodeJS.ProcessEnv, stdin: string): Promise<string> {
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
    case 'ADD':
      return JSON.stringify(resultToVersion(await cmdAdd(env, parseConf(raw)), version));
    case 'DEL':
      await cmdDel(env, parseConf(raw));
      return '';
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

export async function handleRequest(envVars: NodeJS.ProcessEnv, stdin: string): Promise<CniAnswer> {
  try {
    return { stdout: await dispatch(envVars, stdin), exitCode: 0 };
  } catch (err) {
    const e = asCniError(err);
    return { stdout: JSON.stringify(e.toJSON(errorVersion(stdin))), exitCode: 1 };
  }
}
