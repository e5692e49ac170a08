// A logged packet made into a drop event: which pods, which direction, which policies isolate the pod
// and why nothing let the packet through. Pure: the record, the table's group chains and the pods in,
// the event out; and the event's two forms, one text line and one JSON line.
import { DROP_LOG_PREFIX } from '../dataplane/policy/render.js';
import type { Direction } from '../dataplane/policy/render.js';
import type { DropGroup } from '../dataplane/policy/renderer.js';
import type { NflogRecord } from './record.js';

export interface DropEnd { ip: string; port?: number; /** "ns/name" when a pod holds the address. */ pod?: string }

export interface DropEvent {
  /** ISO 8601, milliseconds. */
  time: string;
  node: string;
  /** Undefined for a drop no policy direction owns (the not-a-SYN drop). */
  direction?: Direction;
  proto: string;
  src: DropEnd;
  dst: DropEnd;
  /** The policies isolating the pod ("ns/name"), in the table's order. */
  policies: string[];
  /** Why, in words: "isolated by x/deny, x/web; no policy allows". */
  reason: string;
  /** The chain that dropped the packet (its log prefix without "flatnet-drop "). */
  chain: string;
}

export interface EventContext {
  node: string;
  /** The group chains the agent has rendered, by name. */
  groups: ReadonlyMap<string, DropGroup>;
  /** The pod holding an address, "ns/name". */
  podAt(ip: string): string | undefined;
}

const NOT_SYN = 'not-syn';

/** The chain a prefix names, or undefined when the record is not a flatnet drop. */
export function chainOfPrefix(prefix: string): string | undefined {
  // The kernel may hand the prefix with its terminating NUL.
  const p = prefix.replace(/\0+$/, '').trim();
  return p.startsWith(`${DROP_LOG_PREFIX} `) ? p.slice(DROP_LOG_PREFIX.length + 1) : undefined;
}

/** The event a logged packet stands for; undefined when its prefix is not a flatnet drop's. */
export function toDropEvent(rec: NflogRecord, ctx: EventContext): DropEvent | undefined {
  const chain = chainOfPrefix(rec.prefix);
  if (chain === undefined) return undefined;
  const end = (ip: string | undefined, port: number | undefined): DropEnd => {
    const pod = ip ? ctx.podAt(ip) : undefined;
    return { ip: ip ?? '?', ...(port !== undefined ? { port } : {}), ...(pod ? { pod } : {}) };
  };
  const base = { time: new Date(rec.time).toISOString(), node: ctx.node, proto: rec.proto ?? '?', src: end(rec.src, rec.sport), dst: end(rec.dst, rec.dport), chain };
  if (chain === NOT_SYN) {
    return { ...base, policies: [], reason: 'not a SYN: a TCP segment of no known connection (none to pick up mid-stream)' };
  }
  const group = ctx.groups.get(chain);
  if (!group) return { ...base, policies: [], reason: `dropped by ${chain}, a policy group this agent no longer has` };
  const isolated = group.direction === 'ingress' ? base.dst : base.src;
  const who = isolated.pod ?? isolated.ip;
  const what = group.direction === 'ingress' ? 'ingress to' : 'egress from';
  return { ...base, direction: group.direction, policies: group.policies,
    reason: `${what} ${who} isolated by ${group.policies.join(', ')}; no policy allows` };
}

const endText = (e: DropEnd): string => `${e.pod ? `${e.pod} ` : ''}${e.ip.includes(':') && e.port !== undefined ? `[${e.ip}]` : e.ip}${e.port !== undefined ? `:${e.port}` : ''}`;

/** One human line: time, node, protocol, source, destination, direction and the reason. */
export function formatDropEvent(e: DropEvent): string {
  return `${e.time} ${e.node} DROP ${e.proto} ${endText(e.src)} -> ${endText(e.dst)}: ${e.reason}`;
}

/** An event read back from a drop log line; undefined for a line that is not one. */
export function parseDropEvent(line: string): DropEvent | undefined {
  try {
    const o = JSON.parse(line) as DropEvent;
    return typeof o.time === 'string' && typeof o.node === 'string' && o.src && o.dst && Array.isArray(o.policies) ? o : undefined;
  } catch { return undefined; }
}

/** Whether an event concerns namespace `ns`: either end is a pod there. */
export const inNamespace = (e: DropEvent, ns: string): boolean =>
  [e.src.pod, e.dst.pod].some((p) => p !== undefined && p.slice(0, p.indexOf('/')) === ns);
