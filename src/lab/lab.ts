// The lab: a Kubernetes node is a network namespace, a pod is another one, and the lab runtime
// calls the node's CNI plugins inside the node's namespace, exactly as containerd would on a host.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabState, validateName, type LabNode, type LabPod } from './state.js';
import { CniRuntime } from '../runtime/runtime.js';
import { loadConfList } from '../runtime/conflist.js';
import type { CniResult } from '../cni/types.js';

export const REFERENCE_PLUGIN_DIR = '/usr/lib/cni';
export const NETWORK_NAME = 'flatnet';

/** Finds the bundled flatnet-cni: beside the bundled CLI, or in bin/ of the build for compiled modules. */
export function defaultPluginPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, 'flatnet-cni'), join(here, '../../bin/flatnet-cni')]) {
    if (existsSync(p)) return p;
  }
  throw new Error(`flatnet-cni not found beside ${here}: run "npm run build" first`);
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** The node's CNI network: flatnet-cni on the node's pod CIDR. */
export function nodeConfList(node: LabNode): object {
  return {
    cniVersion: '1.0.0',
    name: NETWORK_NAME,
    plugins: [
      {
        type: 'flatnet-cni',
        bridge: 'cni0',
        mtu: 1500,
        hairpinMode: true,
        ipam: { ranges: [[{ subnet: node.podCIDR }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(node.dir, 'ipam') },
      },
    ],
  };
}

export class Lab {
  readonly state: LabState;
  readonly pluginPath: string;

  constructor(lab: string, opts: { stateRoot?: string; pluginPath?: string } = {}) {
    this.state = new LabState(lab, opts.stateRoot);
    this.pluginPath = opts.pluginPath ?? defaultPluginPath();
  }

  /** Namespace names carry the lab name, so two labs (or test runs) never collide. */
  nodeNetns(node: string): string { return `${this.state.lab}-${node}`; }
  podNetns(pod: string): string { return `${this.state.lab}-pod-${pod}`; }

  private runtime(node: LabNode): CniRuntime {
    return new CniRuntime({
      pluginDirs: [join(node.dir, 'bin'), REFERENCE_PLUGIN_DIR],
      cacheDir: join(node.dir, 'cache'),
      wrap: ['nsenter', `--net=/run/netns/${node.netns}`],
    });
  }

  private confFile(node: LabNode): string { return join(node.dir, 'net.d', '10-flatnet.conflist'); }

  /** The lowest 10.244.N.0/24 no node of the lab holds (until the controller allocates them). */
  private freePodCIDR(): string {
    const used = new Set(this.state.nodes().map((n) => n.podCIDR));
    for (let i = 1; i < 256; i++) if (!used.has(`10.244.${i}.0/24`)) return `10.244.${i}.0/24`;
    throw new Error(`lab "${this.state.lab}": no free /24 left in 10.244.0.0/16`);
  }

  addNode(name: string, podCIDR?: string): LabNode {
    validateName('node', name);
    if (this.state.node(name)) throw new Error(`node "${name}" already exists in lab "${this.state.lab}"`);
    const node: LabNode = {
      name,
      netns: this.nodeNetns(name),
      podCIDR: podCIDR ?? this.freePodCIDR(),
      dir: this.state.nodeDir(name),
    };
    for (const sub of ['net.d', 'bin', 'ipam', 'cache']) mkdirSync(join(node.dir, sub), { recursive: true });
    symlinkSync(this.pluginPath, join(node.dir, 'bin', 'flatnet-cni'));
    writeFileSync(this.confFile(node), JSON.stringify(nodeConfList(node), null, 2) + '\n');
    ip('netns', 'add', node.netns);
    try {
      ip('-n', node.netns, 'link', 'set', 'lo', 'up');
      this.state.saveNode(node);
    } catch (err) {
      ip('netns', 'del', node.netns);
      throw err;
    }
    return node;
  }

  async addPod(name: string, nodeName: string): Promise<LabPod> {
    validateName('pod', name);
    const node = this.state.node(nodeName);
    if (!node) throw new Error(`node "${nodeName}" does not exist in lab "${this.state.lab}"`);
    if (this.state.pod(name)) throw new Error(`pod "${name}" already exists in lab "${this.state.lab}"`);
    const pod: LabPod = { name, node: nodeName, netns: this.podNetns(name), containerId: `${this.state.lab}-${name}`, ips: [] };
    ip('netns', 'add', pod.netns);
    try {
      ip('-n', pod.netns, 'link', 'set', 'lo', 'up');
      const result: CniResult = await this.runtime(node).addNetworkList(loadConfList(this.confFile(node)), {
        containerId: pod.containerId, netns: `/run/netns/${pod.netns}`, ifname: 'eth0',
      });
      pod.ips = (result.ips ?? []).map((x) => x.address);
      this.state.savePod(pod);
      return pod;
    } catch (err) {
      ip('netns', 'del', pod.netns);
      throw err;
    }
  }

  async removePod(name: string): Promise<void> {
    const pod = this.state.pod(name);
    if (!pod) throw new Error(`pod "${name}" does not exist in lab "${this.state.lab}"`);
    const node = this.state.node(pod.node);
    try {
      if (node) {
        await this.runtime(node).delNetworkList(loadConfList(this.confFile(node)), {
          containerId: pod.containerId, netns: `/run/netns/${pod.netns}`, ifname: 'eth0',
        });
      }
    } finally {
      try { ip('netns', 'del', pod.netns); } catch { /* already gone */ }
      this.state.removePod(name);
    }
  }

  async removeNode(name: string): Promise<void> {
    const node = this.state.node(name);
    if (!node) throw new Error(`node "${name}" does not exist in lab "${this.state.lab}"`);
    for (const p of this.state.pods().filter((x) => x.node === name)) await this.removePod(p.name);
    try { ip('netns', 'del', node.netns); } catch { /* already gone */ }
    this.state.removeNode(name);
  }

  /** Removes every pod, node, namespace and file of the lab. */
  async down(): Promise<void> {
    for (const n of this.state.nodes()) await this.removeNode(n.name);
    this.state.removeAll();
  }

  /** Runs a command inside a pod's network namespace; resolves with its exit status. */
  exec(podName: string, argv: string[], stdio: 'inherit' | 'pipe' = 'inherit'): Promise<{ code: number; stdout: string }> {
    const pod = this.state.pod(podName);
    if (!pod) return Promise.reject(new Error(`pod "${podName}" does not exist in lab "${this.state.lab}"`));
    return new Promise((resolve, reject) => {
      const child = spawn('nsenter', [`--net=/run/netns/${pod.netns}`, ...argv], { stdio: ['inherit', stdio, 'inherit'] });
      let stdout = '';
      child.stdout?.on('data', (b: Buffer) => { stdout += b.toString(); });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout }));
    });
  }
}
