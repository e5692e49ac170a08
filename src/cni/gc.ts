// GC (spec 1.1.0): everything not in cni.dev/valid-attachments goes: address reservations and
// host veths of ours (on the bridge; in routed mode, on no bridge). Deleting a host veth takes its
// pod's eth0, its /32 route and its neighbour entry with it. A killed ADD relies on this.
import { CniCode, CniError } from './errors.js';
import type { FlatnetConf } from './config.js';
import { HOST_VETH_PATTERN, hostVethName } from './plan.js';
import { Netns } from '../kernel/netns.js';
import { ipBatch, ipJson } from '../kernel/ip.js';
import { DiskStore } from '../ipam/disk-store.js';
import { gcAttachments } from '../ipam/allocator.js';

export async function cmdGc(conf: FlatnetConf): Promise<{ releasedIps: string[]; deletedLinks: string[] }> {
  const valid = conf.validAttachments;
  if (!valid) throw new CniError(CniCode.InvalidConfig, 'GC needs "cni.dev/valid-attachments" in the configuration');
  const releasedIps = await gcAttachments(new DiskStore(conf.ipam.dataDir, conf.name), valid);

  const node = Netns.current();
  const keep = new Set(valid.map(hostVethName));
  // Routed veths sit on no bridge: those on one belong to a bridge network, never to this one.
  const ports = await ipJson(node, conf.mode === 'bridge' ? ['link', 'show', 'master', conf.bridge] : ['link', 'show', 'type', 'veth']);
  const stale = (ports.data as Array<{ ifname: string; master?: string }>)
    .filter((l) => conf.mode === 'bridge' || l.master === undefined)
    .map((l) => l.ifname)
    .filter((n) => HOST_VETH_PATTERN.test(n) && !keep.has(n));
  if (stale.length) {
    const r = await ipBatch(node, stale.map((n) => `link del ${n}`), { force: true });
    const real = [...r.failures.values()].filter((m) => !/Cannot find device/.test(m));
    if (real.length) throw new CniError(CniCode.Internal, `GC: deleting stale veths: ${real.join('; ')}`);
  }
  return { releasedIps, deletedLinks: stale };
}
