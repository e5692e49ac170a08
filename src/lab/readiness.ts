// Pod readiness in the lab, as a kubelet readiness probe would report it: a pod is Ready when all its
// containers run and every port its containers declare is in use in the pod's network namespace (TCP
// listening, UDP bound). Read from the kernel's socket tables (/proc/PID/net/* of a process in the
// pod), never by connecting: a probe connection would show up in the workload's own traffic.
import { readFileSync } from 'node:fs';
import type { Container, PodStatus } from '../api/types.js';

/** How often the kubelet re-reads readiness: a server that came up or died shows within this. */
export const READINESS_PERIOD_MS = 1000;

export interface PortsInUse { tcp: Set<number>; udp: Set<number> }

export interface Readiness { ready: boolean; reason?: string; message?: string }

type PodCondition = NonNullable<PodStatus['conditions']>[number];

/**
 * Local ports from a /proc/net/{tcp,tcp6,udp,udp6} table: TCP sockets in LISTEN (state 0A), UDP
 * sockets bound and unconnected (state 07), as a server's are.
 */
export function portsFromProcNet(text: string, protocol: 'tcp' | 'udp'): Set<number> {
  const want = protocol === 'tcp' ? '0A' : '07';
  const ports = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== want) continue;
    const port = parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16);
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}

/** The ports in use in the network namespace of `pid`; undefined when that process is gone. */
export function portsInUse(pid: number): PortsInUse | undefined {
  const read = (file: string): string | undefined => {
    try { return readFileSync(`/proc/${pid}/net/${file}`, 'utf8'); } catch { return undefined; }
  };
  const tcp4 = read('tcp');
  if (tcp4 === undefined) return undefined;
  const all = (protocol: 'tcp' | 'udp', texts: Array<string | undefined>) => new Set(texts.flatMap((t) => (t ? [...portsFromProcNet(t, protocol)] : [])));
  // tcp6/udp6 are absent when the kernel has no IPv6.
  return { tcp: all('tcp', [tcp4, read('tcp6')]), udp: all('udp', [read('udp'), read('udp6')]) };
}

/**
 * Pure: readiness from the containers the pod declares, the pids of those that run, and the ports in
 * use in the pod's namespace (read through any running container). No declared port: Ready once every
 * container runs, as for a container without a readiness probe.
 */
export function readinessOf(containers: Container[], pids: Map<string, number>, inUse: (pid: number) => PortsInUse | undefined): Readiness {
  const stopped = containers.filter((c) => !pids.has(c.name)).map((c) => c.name);
  if (stopped.length) return { ready: false, reason: 'ContainersNotReady', message: `containers not running: ${stopped.join(', ')}` };
  const declared = containers.flatMap((c) => (c.ports ?? []).map((p) => ({ port: p.containerPort, protocol: (p.protocol ?? 'TCP').toLowerCase() })))
    .filter((p): p is { port: number; protocol: 'tcp' | 'udp' } => p.protocol === 'tcp' || p.protocol === 'udp');
  if (declared.length === 0) return { ready: true };
  let ports: PortsInUse | undefined;
  for (const pid of pids.values()) if ((ports = inUse(pid))) break;
  if (!ports) return { ready: false, reason: 'ContainersNotReady', message: 'containers not running' };
  const idle = declared.filter((p) => !ports![p.protocol].has(p.port));
  if (idle.length) return { ready: false, reason: 'ContainersNotReady', message: `ports not listening: ${idle.map((p) => `${p.port}/${p.protocol}`).join(', ')}` };
  return { ready: true };
}

/** The pod's Ready condition for a readiness. */
export function readyCondition(r: Readiness): PodCondition {
  return r.ready ? { type: 'Ready', status: 'True' } : { type: 'Ready', status: 'False', reason: r.reason, message: r.message };
}
