// ADD: validate, take an address, wire the veth into the bridge and the pod, answer the result.
// Every resource taken pushes its undo, so a failed ADD leaves no veth, address or reservation.
import { writeFileSync, readFileSync } from 'node:fs';
import { CniCode, CniError } from './errors.js';
import type { FlatnetConf } from './config.js';
import type { CniRequestEnv } from './env.js';
import type { Attachment, CniResult } from './types.js';
import { buildResult, planAttachment } from './plan.js';
import { renderMasqAdd } from './masq.js';
import { Netns } from '../kernel/netns.js';
import { ipBatch, IpBatchError } from '../kernel/ip.js';
import { nftApply } from '../kernel/nft.js';
import { DiskStore } from '../ipam/disk-store.js';
import { allocate } from '../ipam/allocator.js';

/** Addresses asked for in CNI_ARGS "IP=a,b" join those of args.cni.ips / runtimeConfig.ips. */
function requestedIps(conf: FlatnetConf, env: CniRequestEnv): string[] {
  const fromArgs = (env.args.get('IP') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return [...new Set([...conf.requestedIps, ...fromArgs])];
}

/** A gateway bridge forwards between pods and the node's other links, as `isGateway` does. */
function ensureForwarding(v4: boolean, v6: boolean): void {
  const want = [v4 && '/proc/sys/net/ipv4/ip_forward', v6 && '/proc/sys/net/ipv6/conf/all/forwarding'].filter(Boolean) as string[];
  for (const file of want) {
    if (readFileSync(file, 'utf8').trim() !== '1') writeFileSync(file, '1');
  }
}

export async function cmdAdd(env: CniRequestEnv, conf: FlatnetConf): Promise<CniResult> {
  const a: Attachment = { containerId: env.containerId, ifname: env.ifname };
  const podNs = new Netns(env.netns);
  if (!podNs.exists()) {
    throw new CniError(CniCode.UnknownContainer, `CNI_NETNS "${env.netns}": no such network namespace`);
  }
  const store = new DiskStore(conf.ipam.dataDir, conf.name);
  const undo: Array<() => Promise<unknown> | unknown> = [];
  try {
    // A retried ADD (same attachment, no DEL between) reuses its reservation; undo frees only what is new.
    const allocs = allocate(store, conf.ipam, a, requestedIps(conf, env));
    const taken = allocs.filter((x) => !x.reused).map((x) => x.ip);
    undo.push(() => store.withLock(() => taken.forEach((ip) => store.releaseIp(ip))));

    const plan = planAttachment(conf, a, env.netns, allocs);
    ensureForwarding(allocs.some((x) => x.version === 4), allocs.some((x) => x.version === 6));

    const node = Netns.current();
    const lines = conf.mode === 'bridge' ? [...plan.nodeLines, `link show ${conf.bridge}`] : plan.nodeLines;
    const veth = lines.findIndex((l) => l.startsWith(`link add ${plan.hostVeth} `)) + 1;
    const res = await ipBatch(node, lines, { force: true, viaSession: true });
    if (!res.failures.has(veth)) undo.push(() => ipBatch(node, [`link del ${plan.hostVeth}`], { force: true }));
    for (const [line, msg] of res.failures) {
      if (conf.mode === 'bridge' && line === 1 && /File exists/.test(msg)) continue; // the bridge is already there
      if (line === veth && /File exists/.test(msg)) {
        throw new CniError(CniCode.Internal, `interface "${env.ifname}" or host veth "${plan.hostVeth}" already exists: ${msg}`);
      }
      throw new CniError(CniCode.Internal, `node netns: "ip ${lines[line - 1]}" failed: ${msg}`);
    }
    // The bridge may predate this plugin with another MAC: report the one `link show` printed.
    const bridgeMacSeen = /link\/ether ([0-9a-f:]{17})/.exec(res.stdout)?.[1] ?? plan.bridgeMac;

    await ipBatch(podNs, plan.podLines).catch((err: unknown) => {
      const msg = err instanceof IpBatchError ? err.message : String(err);
      throw new CniError(CniCode.Internal, `pod netns ${env.netns}: ${msg}`, '', { cause: err });
    });
    if (conf.ipMasq) {
      await nftApply(node, renderMasqAdd(conf.bridge, allocs));
    }
    return buildResult(conf, a, env.netns, plan, allocs, bridgeMacSeen);
  } catch (err) {
    for (const step of undo.reverse()) {
      try { await step(); } catch { /* best effort: report the original failure */ }
    }
    throw err;
  }
}
