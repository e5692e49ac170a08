// GC (spec 1.1.0): everything not in cni.dev/valid-attachments goes: address reservations and
// host veths of ours on the bridge. No reference plugin implements it; a killed ADD relies on it.
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
  const releasedIps = gcAttachments(new DiskStore(conf.ipam.dataDir, conf.name), valid);

  const node = Netns.current();
  const keep = new Set(valid.map(hostVethName));
  const ports = await ipJson(node, ['link', 'show', 'master', conf.bridge]);
  const stale = (ports.data as Array<{ ifname: string }>)
    .map((l) => l.ifname)
    .filter((n) => HOST_VETH_PATTERN.test(n) && !keep.has(n));
  if (stale.length) {
    const r = await ipBatch(node, stale.map((n) => `link del ${n}`), { force: true });
    const real = [...r.failures.values()].filter((m) => !/Cannot find device/.test(m));
    if (real.length) throw new CniError(CniCode.Internal, `GC: deleting stale veths: ${real.join('; ')}`);
  }
  return { releasedIps, deletedLinks: stale };
}
