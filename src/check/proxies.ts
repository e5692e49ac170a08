// Before it probes Services, the check waits (bounded) until every node's proxy holds what the proxy's
// own renderer gives for the stored Services and EndpointSlices on that node: an endpoint that became
// ready a moment ago, and that a busy node's agent has not written yet, is not a network failure (a
// fresh-clone CI run under load saw "80 probes never reached" one such endpoint from one node). The
// wait is bounded: a proxy still behind afterwards is what the probes then show.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EndpointSlice, Service } from '../api/types.js';
import { renderProxy } from '../dataplane/proxy/render.js';
import { PROXY_TABLE } from '../dataplane/proxy/skeleton.js';
import { nftListSet } from '../kernel/nft.js';
import { Netns } from '../kernel/netns.js';
import type { CheckNode } from './model.js';

/** Each node's `services` map elements as its proxy would write them: "10.96.0.10 . tcp . 80 : goto pick-3". Pure. */
export function wantedServiceElements(nodes: CheckNode[], services: Service[], slices: EndpointSlice[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of nodes) {
    const plan = renderProxy({ nodeName: n.name, nodeIPs: [n.nodeIP], services, slices });
    out.set(n.name, [...plan.elements.services].map(([k, v]) => `${k} : ${v}`));
  }
  return out;
}

/** Polls the nodes' proxy maps until each holds its wanted elements, or `timeoutMs` passes; the nodes still behind. */
export async function waitProxies(nodes: CheckNode[], services: Service[], slices: EndpointSlice[], timeoutMs: number,
  opts: { pollMs?: number; log?: (line: string) => void } = {}): Promise<string[]> {
  const wanted = wantedServiceElements(nodes, services, slices);
  const deadline = Date.now() + timeoutMs;
  for (let said = false; ; said = true) {
    const behind: string[] = [];
    await Promise.all(nodes.map(async (n) => {
      // No proxy table (the proxy turned off, or kube-proxy's job): nothing to wait for.
      const listed = await nftListSet(new Netns(`/run/netns/${n.netns}`), 'map', 'ip', PROXY_TABLE, 'services').catch(() => undefined);
      if (listed === undefined) return;
      if ((wanted.get(n.name) ?? []).some((e) => !listed.includes(e))) behind.push(n.name);
    }));
    if (behind.length === 0 || Date.now() >= deadline) return behind.sort();
    if (!said) opts.log?.(`waiting up to ${Math.round(timeoutMs / 1000)} s for the service proxy of ${behind.sort().join(', ')} to catch up`);
    await sleep(opts.pollMs ?? 100);
  }
}
