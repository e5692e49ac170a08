// DEL is best effort and idempotent: it succeeds when the netns is gone, when CNI_NETNS is empty
// (ctr sends that) and when called twice (CRI does that), and it always releases the address.
import { CniCode, CniError } from './errors.js';
import type { FlatnetConf } from './config.js';
import type { CniRequestEnv } from './env.js';
import { hostVethName } from './plan.js';
import { renderMasqDel } from './masq.js';
import { Netns } from '../kernel/netns.js';
import { ipBatch, renewIpSession } from '../kernel/ip.js';
import { nftApply } from '../kernel/nft.js';
import { DiskStore } from '../ipam/disk-store.js';
import { releaseAttachment } from '../ipam/allocator.js';

export async function cmdDel(env: CniRequestEnv, conf: FlatnetConf): Promise<void> {
  const a = { containerId: env.containerId, ifname: env.ifname };
  const node = Netns.current();
  const errors: string[] = [];
  // Deleting the host end removes the pair; the kernel takes ~30 ms, so release the address meanwhile.
  const unlink = ipBatch(node, [`link del ${hostVethName(a)}`], { force: true }).then((r) => {
    for (const msg of r.failures.values()) {
      if (!/Cannot find device/.test(msg)) errors.push(`deleting host veth: ${msg}`);
    }
  }, (err: unknown) => { errors.push(`deleting host veth: ${String(err)}`); })
    // The warm session may have cached the deleted veth's index; a re-ADD under the same name needs a fresh one.
    .finally(renewIpSession);
  let released: string[] = [];
  // A lock held too long is "try again" (11), so the runtime retries the DEL and the address is freed.
  let code: number = CniCode.Internal;
  try {
    released = await releaseAttachment(new DiskStore(conf.ipam.dataDir, conf.name), a);
  } catch (err) {
    if (err instanceof CniError && err.code === CniCode.TryAgainLater) code = CniCode.TryAgainLater;
    errors.push(`releasing address: ${(err as Error).message}`);
  }
  await unlink;
  if (conf.ipMasq && released.length > 0) {
    await nftApply(node, renderMasqDel(conf.bridge, released)).catch((err: unknown) => {
      errors.push(`removing masquerade: ${(err as Error).message}`);
    });
  }
  if (errors.length) throw new CniError(code, `DEL ${a.containerId}/${a.ifname}: ${errors.join('; ')}`);
}
