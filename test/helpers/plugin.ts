// Calls flatnet-cni the way a runtime does: a fresh process, only PATH and CNI_* in its environment,
// inside the node's network namespace.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { netnsPath } from './scope.js';

/** The bundled plugin of the build these compiled tests belong to (<out>/bin/flatnet-cni). */
export const FLATNET_CNI = fileURLToPath(new URL('../../bin/flatnet-cni', import.meta.url));

export interface PluginCall {
  command: string;
  containerId?: string;
  netns?: string;        // a path, as CNI_NETNS
  ifname?: string;
  args?: string;
  nodeNetns?: string;    // name of the netns the plugin runs in
  plugin?: string;
  env?: Record<string, string>;
}

export interface PluginAnswer {
  code: number;           // exit status
  stdout: string;
  stderr: string;
  json: any;              // parsed stdout, or undefined
}

export function callPlugin(call: PluginCall, config: unknown): Promise<PluginAnswer> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: call.command, CNI_PATH: '/usr/lib/cni' };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  Object.assign(env, call.env ?? {});
  const plugin = call.plugin ?? FLATNET_CNI;
  const [cmd, args] = call.nodeNetns ? ['nsenter', [`--net=${netnsPath(call.nodeNetns)}`, plugin]] : [plugin, []];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args as string[], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      let json: any;
      try { json = stdout.trim() ? JSON.parse(stdout) : undefined; } catch { json = undefined; }
      resolve({ code: code ?? 1, stdout, stderr, json });
    });
    // A plugin may answer (and exit) without reading stdin, as VERSION without a config does.
    child.stdin.on('error', () => { /* EPIPE: the answer is what counts */ });
    child.stdin.end(typeof config === 'string' ? config : JSON.stringify(config));
  });
}

/** A flatnet-cni network config for tests. */
export function flatnetConf(o: { subnet: string; dataDir: string; bridge: string; version?: string; name?: string; extra?: Record<string, unknown>; ipamExtra?: Record<string, unknown> }): Record<string, unknown> {
  return {
    cniVersion: o.version ?? '1.0.0',
    name: o.name ?? 'pods',
    type: 'flatnet-cni',
    bridge: o.bridge,
    ipam: { ranges: [[{ subnet: o.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: o.dataDir, ...(o.ipamExtra ?? {}) },
    ...(o.extra ?? {}),
  };
}
