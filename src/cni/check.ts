// CHECK: the attachment ADD made is still whole: pod interface, its addresses, its routes, the host
// veth on the bridge, and the address reservations on disk. The first thing missing is named.
import { CniCode, CniError } from './errors.js';
import type { FlatnetConf } from './config.js';
import { checkNetnsPath, type CniRequestEnv } from './env.js';
import { hostVethName } from './plan.js';
import { Netns } from '../kernel/netns.js';
import { ipJson } from '../kernel/ip.js';
import { DiskStore } from '../ipam/disk-store.js';
import { findAttachment } from '../ipam/allocator.js';
import { canonicalIp } from '../ipam/addr.js';

const fail = (msg: string) => new CniError(CniCode.CheckFailed, msg);

export async function cmdCheck(env: CniRequestEnv, conf: FlatnetConf): Promise<void> {
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CniCode.InvalidConfig, 'CHECK needs prevResult (the result of ADD)');
  const podNs = new Netns(env.netns);
  checkNetnsPath(env.netns);

  const ifIndex = prev.interfaces?.findIndex((i) => i.name === env.ifname && i.sandbox) ?? -1;
  if (ifIndex < 0) throw fail(`prevResult has no interface "${env.ifname}" in a sandbox`);
  const ours = (prev.ips ?? []).filter((ip) => ip.interface === ifIndex);
  if (ours.length === 0) throw fail(`prevResult has no address on interface "${env.ifname}"`);

  const addrs = await ipJson(podNs, ['addr', 'show', 'dev', env.ifname]);
  if (!addrs.ok || addrs.data.length === 0) throw fail(`interface "${env.ifname}" not found in ${env.netns}`);
  const link = addrs.data[0] as { operstate?: string; flags?: string[]; addr_info?: Array<{ local: string; prefixlen: number }> };
  if (!link.flags?.includes('UP')) throw fail(`interface "${env.ifname}" in ${env.netns} is down`);
  const present = new Set((link.addr_info ?? []).map((x) => `${x.local}/${x.prefixlen}`));
  for (const ip of ours) {
    if (!present.has(ip.address)) throw fail(`address ${ip.address} missing on "${env.ifname}" in ${env.netns}`);
  }

  const routes: Array<{ dst: string; gateway?: string }> = [];
  for (const fam of new Set(conf.ipam.routes.map((r) => (r.dst.includes(':') ? '-6' : '-4')))) {
    const r = await ipJson(podNs, [fam, 'route', 'show', 'table', 'main']);
    routes.push(...(r.data as Array<{ dst: string; gateway?: string }>));
  }
  for (const want of conf.ipam.routes) {
    const dst = want.dst === '0.0.0.0/0' || want.dst === '::/0' ? 'default' : want.dst;
    if (!routes.some((r) => r.dst === dst || r.dst === want.dst.replace(/\/(32|128)$/, ''))) {
      throw fail(`route to ${want.dst} missing in ${env.netns}`);
    }
  }

  const veth = hostVethName({ containerId: env.containerId, ifname: env.ifname });
  const host = await ipJson(Netns.current(), ['link', 'show', 'dev', veth]);
  const master = (host.data[0] as { master?: string } | undefined)?.master;
  if (conf.mode === 'bridge' && (!host.ok || master !== conf.bridge)) throw fail(`host veth "${veth}" is missing or not on bridge "${conf.bridge}"`);
  if (conf.mode === 'routed') {
    if (!host.ok || host.data.length === 0) throw fail(`host veth "${veth}" is missing`);
    const toPod = await ipJson(Netns.current(), ['-4', 'route', 'show', 'dev', veth]);
    for (const ip of ours) {
      const bare = ip.address.slice(0, ip.address.indexOf('/'));
      if (!(toPod.data as Array<{ dst: string }>).some((r) => r.dst === bare)) throw fail(`node route to ${bare} via "${veth}" missing`);
    }
  }

  const reserved = new Set(findAttachment(new DiskStore(conf.ipam.dataDir, conf.name), env));
  for (const ip of ours) {
    // Reservation files are named by the canonical address; a runtime may spell IPv6 otherwise.
    const bare = canonicalIp(ip.address.slice(0, ip.address.indexOf('/'))) ?? ip.address;
    if (!reserved.has(bare)) throw fail(`address ${bare} is not reserved for ${env.containerId}/${env.ifname} in ${conf.ipam.dataDir}`);
  }
}
