// A lab's state on disk: one JSON file per node and per pod, so concurrent CLI calls need no lock.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export interface LabNode {
  name: string;
  netns: string;        // name under /run/netns
  podCIDR: string;
  dir: string;          // everything the node keeps on disk: conf dir, plugin dir, IPAM data, result cache
}

export interface LabPod {
  name: string;
  node: string;
  netns: string;
  containerId: string;
  ips: string[];        // CIDRs from the CNI result
}

export const DEFAULT_STATE_ROOT = '/run/flatnet/lab';

/** Lab names become namespace and directory prefixes. */
export function validateName(kind: string, name: string): void {
  if (!/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(name)) {
    throw new Error(`${kind} name "${name}" is invalid: 1-32 lowercase letters, digits and "-", starting and ending with a letter or digit`);
  }
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

function readJsonDir<T>(dir: string): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as T);
}

export class LabState {
  readonly lab: string;
  readonly root: string;
  constructor(lab: string, stateRoot = DEFAULT_STATE_ROOT) {
    validateName('lab', lab);
    this.lab = lab;
    this.root = join(stateRoot, lab);
  }

  get nodesDir(): string { return join(this.root, 'nodes'); }
  get podsDir(): string { return join(this.root, 'pods'); }
  nodeDir(node: string): string { return join(this.root, 'node-data', node); }

  nodes(): LabNode[] { return readJsonDir<LabNode>(this.nodesDir); }
  pods(): LabPod[] { return readJsonDir<LabPod>(this.podsDir); }
  node(name: string): LabNode | undefined { return this.nodes().find((n) => n.name === name); }
  pod(name: string): LabPod | undefined { return this.pods().find((p) => p.name === name); }

  saveNode(n: LabNode): void { mkdirSync(this.nodesDir, { recursive: true }); writeJsonAtomic(join(this.nodesDir, `${n.name}.json`), n); }
  savePod(p: LabPod): void { mkdirSync(this.podsDir, { recursive: true }); writeJsonAtomic(join(this.podsDir, `${p.name}.json`), p); }
  removeNode(name: string): void { rmSync(join(this.nodesDir, `${name}.json`), { force: true }); rmSync(this.nodeDir(name), { recursive: true, force: true }); }
  removePod(name: string): void { rmSync(join(this.podsDir, `${name}.json`), { force: true }); }
  removeAll(): void { rmSync(this.root, { recursive: true, force: true }); }
}
