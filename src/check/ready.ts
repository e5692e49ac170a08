// Before it probes, the check waits for the cluster to settle, as a user would before running it: every
// pod Running and Ready (its declared ports listen: lab/readiness.ts), and every Service's
// EndpointSlices saying what the pods' readiness says (the controller has caught up). The wait is
// bounded; pods still not Ready then are reported as such, not as network failures.
import { setTimeout as sleep } from 'node:timers/promises';
import { SERVICE_NAME_LABEL, type EndpointSlice, type Pod, type Service } from '../api/types.js';
import { isTerminating } from '../api/termination.js';
import { desiredSlices } from '../controller/endpoints.js';
import type { UnreadyPod } from './model.js';

const label = (p: Pod) => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

export const isPodReady = (p: Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** Pods that should be Ready and are not, with why. Terminating and finished pods are not waited for. */
export function unreadyPods(pods: Pod[]): UnreadyPod[] {
  const out: UnreadyPod[] = [];
  for (const p of pods) {
    const phase = p.status?.phase ?? 'Pending';
    if (isTerminating(p) || phase === 'Succeeded' || phase === 'Failed' || isPodReady(p)) continue;
    const cond = p.status?.conditions?.find((c) => c.type === 'Ready');
    const reason = phase !== 'Running' ? `${phase}${p.status?.message ? `: ${p.status.message}` : ''}` : cond?.message ?? 'not Ready';
    out.push({ pod: label(p), node: p.spec.nodeName, reason });
  }
  return out.sort((a, b) => a.pod.localeCompare(b.pod));
}

/** Services whose slices' ready addresses differ from what the pods' readiness gives: the controller lags. */
export function laggingServices(services: Service[], slices: EndpointSlice[], pods: Pod[]): string[] {
  const readyIn = (ss: EndpointSlice[]) => ss.flatMap((s) => s.endpoints.filter((e) => e.conditions.ready).map((e) => e.addresses[0])).sort().join(',');
  const out: string[] = [];
  for (const svc of services) {
    if (!svc.spec.selector) continue;
    const ns = svc.metadata.namespace ?? 'default';
    const stored = slices.filter((s) => (s.metadata.namespace ?? 'default') === ns && s.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name);
    if (readyIn(stored) !== readyIn(desiredSlices(svc, pods))) out.push(`${ns}/${svc.metadata.name}`);
  }
  return out;
}

export interface ClusterState { pods: Pod[]; services: Service[]; slices: EndpointSlice[] }

/** Polls until every pod is Ready and the slices follow, or `timeoutMs` passes; resolves with the pods still not Ready. */
export async function waitSettled(read: () => Promise<ClusterState>, timeoutMs: number, opts: { pollMs?: number; log?: (line: string) => void } = {}): Promise<UnreadyPod[]> {
  const deadline = Date.now() + timeoutMs;
  for (let said = false; ; said = true) {
    const st = await read();
    const unready = unreadyPods(st.pods);
    const lagging = laggingServices(st.services, st.slices, st.pods);
    if ((unready.length === 0 && lagging.length === 0) || Date.now() >= deadline) return unready;
    // Said once, so that a user does not wonder what the check is doing.
    if (!said && unready.length) opts.log?.(`waiting up to ${Math.round(timeoutMs / 1000)} s for ${unready.length} pod${unready.length === 1 ? '' : 's'} to be Ready: ${unready.slice(0, 5).map((u) => u.pod).join(', ')}${unready.length > 5 ? ', ...' : ''}`);
    await sleep(opts.pollMs ?? 200);
  }
}
