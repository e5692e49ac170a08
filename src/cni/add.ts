// ADD: validate, take an address, wire the veth into the bridge and the pod, answer the result.
// Every resource taken pushes its undo, so a failed ADD leaves no veth, address or reservation.
import { writeFileSync, readFileSync } from 'node:fs';
import { CniCode, CniError } from './errors.js';
import { normalizeMac, type FlatnetConf } from './config.js';
import { checkNetnsPath, type CniRequestEnv } from './env.js';
import type { Attachment, CniResult } from './types.js';
import { buildResult, planAttachment, type AttachmentPlan } from './plan.js';
import { renderMasqAdd, renderMasqDel } from './masq.js';
import { Netns } from '../kernel/netns.js';
import { ipBatch, IpBatchError, renewIpSession, type BatchResult } from '../kernel/ip.js';
import { IpSessionError, isStaleDeviceAnswer } from '../kernel/ip-session.js';
import { nftApply } from '../kernel/nft.js';
import { DiskStore } from '../ipam/disk-store.js';
import { allocate } from '../ipam/allocator.js';

/** Addresses asked for in CNI_ARGS "IP=a,b" join those of args.cni.ips / runtimeConfig.ips. */
function requestedIps(conf: FlatnetConf, env: CniRequestEnv): string[] {
  const fromArgs = (env.args.get('IP') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return [...new Set([...conf.requestedIps, ...fromArgs])];
}

type Undo = () => Promise<unknown> | unknown;

/**
 * The pod interface's MAC when the runtime asks for one, as the reference bridge plugin reads it:
 * runtimeConfig.mac, else args.cni.mac, else CNI_ARGS MAC (podman --mac-address).
 */
function requestedMac(conf: FlatnetConf, env: CniRequestEnv): string | undefined {
  if (conf.mac) return conf.mac;
  const fromArgs = env.args.get('MAC');
  if (fromArgs === undefined || fromArgs === '') return undefined;
  const mac = normalizeMac(fromArgs);
  if (!mac) throw new CniError(CniCode.InvalidEnv, `CNI_ARGS MAC "${fromArgs}" is not a unicast MAC address (like 0a:58:0a:f4:01:05)`);
  return mac;
}

/** A gateway bridge forwards between pods and the node's other links, as `isGateway` does. */
function ensureForwarding(v4: boolean, v6: boolean): void {
  const want = [v4 && '/proc/sys/net/ipv4/ip_forward', v6 && '/proc/sys/net/ipv6/conf/all/forwarding'].filter(Boolean) as string[];
  for (const file of want) {
    if (readFileSync(file, 'utf8').trim() !== '1') writeFileSync(file, '1');
  }
}

/**
 * The node side: bridge, veth (its pod end born in the pod), routes. The veth's undo is pushed before
 * the batch runs, so a batch that dies half-way is undone too. An answer naming a device the kernel no
 * longer knows (the warm session's cached index of a deleted cni0 or host veth, see ip-session.ts) is
 * retried once on a fresh session, after removing what the first try made.
 */
async function wireNode(conf: FlatnetConf, env: CniRequestEnv, plan: AttachmentPlan, undo: Undo[]): Promise<BatchResult> {
  const node = Netns.current();
  const lines = conf.mode === 'bridge' ? [...plan.nodeLines, `link show ${conf.bridge}`] : plan.nodeLines;
  const veth = lines.findIndex((l) => l.startsWith(`link add ${plan.hostVeth} `)) + 1;
  const removeVeth = async () => {
    await ipBatch(node, [`link del ${plan.hostVeth}`], { force: true });
    renewIpSession();
  };
  let ours = true; // until ip says the veth was there before us (then it is not ours to remove)
  undo.push(() => (ours ? removeVeth() : undefined));

  const attempt = () => ipBatch(node, lines, { force: true, viaSession: true });
  let res = await attempt().catch((err: unknown) => { if (err instanceof IpSessionError) return undefined; throw err; });
  if (res?.failures.has(veth) && /File exists/.test(res.failures.get(veth)!)) ours = false;
  if (ours && (!res || [...res.failures.values()].some(isStaleDeviceAnswer))) {
    await removeVeth();
    res = await attempt().catch((err: unknown) => {
      throw new CniError(CniCode.TryAgainLater, `node netns: ${(err as Error).message}`, '', { cause: err });
    });
  }
  for (const [line, msg] of res!.failures) {
    if (conf.mode === 'bridge' && line === 1 && /File exists/.test(msg)) continue; // the bridge is already there
    if (line === veth && /File exists/.test(msg)) {
      throw new CniError(CniCode.Internal, `interface "${env.ifname}" or host veth "${plan.hostVeth}" already exists: ${msg}`);
    }
    throw new CniError(CniCode.Internal, `node netns: "ip ${lines[line - 1]}" failed: ${msg}`);
  }
  return res!;
}

/** Runs after the pod is wired, before ADD answers; throwing undoes the ADD (the warm server's hooks). */
export type AfterAdd = (result: CniResult) => Promise<void>;

export async function cmdAdd(env: CniRequestEnv, conf: FlatnetConf, afterAdd?: AfterAdd): Promise<CniResult> {
  const a: Attachment = { containerId: env.containerId, ifname: env.ifname };
  checkNetnsPath(env.netns);
  const mac = requestedMac(conf, env);
  const podNs = new Netns(env.netns);
  const store = new DiskStore(conf.ipam.dataDir, conf.name);
  const undo: Undo[] = [];
  try {
    // A retried ADD (same attachment, no DEL between) reuses its reservation; undo frees only what is new.
    const allocs = await allocate(store, conf.ipam, a, requestedIps(conf, env));
    const taken = allocs.filter((x) => !x.reused).map((x) => x.ip);
    undo.push(() => store.withLock(() => taken.forEach((ip) => store.releaseIp(ip))));

    const plan = planAttachment(conf, a, env.netns, allocs, mac);
    ensureForwarding(allocs.some((x) => x.version === 4), allocs.some((x) => x.version === 6));
    const res = await wireNode(conf, env, plan, undo);
    // The bridge may predate this plugin with another MAC: report the one `link show` printed.
    const bridgeMacSeen = /link\/ether ([0-9a-f:]{17})/.exec(res.stdout)?.[1] ?? plan.bridgeMac;

    await ipBatch(podNs, plan.podLines).catch((err: unknown) => {
      const msg = err instanceof IpBatchError ? err.message : String(err);
      throw new CniError(CniCode.Internal, `pod netns ${env.netns}: ${msg}`, '', { cause: err });
    });
    if (conf.ipMasq) {
      // Pushed first: a transaction whose answer is lost (nft killed at its deadline) may have committed.
      const fresh = allocs.filter((x) => !x.reused).map((x) => x.ip);
      if (fresh.length) undo.push(() => nftApply(Netns.current(), renderMasqDel(conf.bridge, fresh)));
      await nftApply(Netns.current(), renderMasqAdd(conf.bridge, allocs));
    }
    const result = buildResult(conf, a, env.netns, plan, allocs, bridgeMacSeen);
    // The agent acts on the pod before ADD returns (policy isolates it); its failure undoes all of the above.
    if (afterAdd) await afterAdd(result);
    return result;
  } catch (err) {
    for (const step of undo.reverse()) {
      try { await step(); } catch { /* best effort: report the original failure */ }
    }
    throw err;
  }
}
