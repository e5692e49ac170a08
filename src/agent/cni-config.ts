// The node's CNI network configuration: flatnet-cni on this node's pod CIDR(s). The plugin stays
// self-contained (as kindnet's does): everything it needs is in this file, nothing is asked of the agent.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const NETWORK_NAME = 'flatnet';
export const BRIDGE = 'cni0';

export interface CniConfigInputs {
  podCIDRs: string[];
  mtu: number;
  /** IPAM reservations directory (per node). */
  dataDir: string;
  /** routed (IPv4): each pod's veth routed by the node, no bridge; bridge: pods on cni0 (needed for IPv6). */
  mode: 'bridge' | 'routed';
}

export function renderConfList(inp: CniConfigInputs): object {
  const v4 = inp.podCIDRs.some((c) => !c.includes(':'));
  const v6 = inp.podCIDRs.some((c) => c.includes(':'));
  return {
    cniVersion: '1.0.0',
    name: NETWORK_NAME,
    plugins: [{
      type: 'flatnet-cni',
      ...(inp.mode === 'routed' ? { mode: 'routed' } : { bridge: BRIDGE, hairpinMode: true }),
      mtu: inp.mtu,
      // The agent masquerades for the whole node (flatnet-masq); per-pod rules would duplicate it.
      ipMasq: false,
      ipam: {
        ranges: inp.podCIDRs.map((subnet) => [{ subnet }]),
        routes: [...(v4 ? [{ dst: '0.0.0.0/0' }] : []), ...(v6 ? [{ dst: '::/0' }] : [])],
        dataDir: inp.dataDir,
      },
    }],
  };
}

/** Writes the conflist only when its content changes (temp file, then rename): a runtime never reads half a file. */
export function writeConfList(file: string, conf: object): boolean {
  const text = JSON.stringify(conf, null, 2) + '\n';
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return false;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  return true;
}
