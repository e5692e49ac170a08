// What a trace does in the kernel of a node or a pod, through nft, iproute2, conntrack and a child in
// the source's namespace: its own nft table sets nftrace on exactly the tagged packet (its source port,
// or its ICMP echo id) before any other hook sees it, so tracing never marks other traffic; one real
// packet carries the tag; and after it passed, the route its destination takes (with the VXLAN peer)
// and the conntrack entry it made are read. One table per trace (the tag in its name): traces running
// at once do not remove each other's.
import { spawn } from 'node:child_process';
import { Netns } from '../kernel/netns.js';
import { nftApply } from '../kernel/nft.js';
import { ipJson } from '../kernel/ip.js';
import { runCommand } from '../kernel/exec.js';
import { conntrackList, type ConntrackEntry } from '../kernel/conntrack.js';
import type { RouteFact } from './hops.js';
import { neighbourFailure, parseRouteGetError, routeGetArgs, type KernelReason, type ReasonQuestion } from './reason.js';

export type TraceProtocol = 'tcp' | 'udp' | 'icmp';

export const traceTableName = (tag: number): string => `flatnet-trace-${tag}`;

/** The match of the tagged packet: a TCP SYN (not its retransmits' answers), a datagram, an echo request. */
export function tagMatch(protocol: TraceProtocol, tag: number): string {
  if (protocol === 'tcp') return `tcp sport ${tag} tcp flags & (syn | ack) == syn`;
  if (protocol === 'udp') return `udp sport ${tag}`;
  return `icmp type echo-request icmp id ${tag}`;
}

/** The table that arms the trace: prerouting for packets a node forwards, output for its own. */
export function armScript(protocol: TraceProtocol, tag: number): string {
  const table = traceTableName(tag);
  const rule = `${tagMatch(protocol, tag)} meta nftrace set 1 comment "flatnet trace ${tag}"`;
  // Priority -400 runs before conntrack (-200) and the guard's raw chain (-300): every later table is traced.
  return [
    `table ip ${table} {`,
    `\tchain pre { type filter hook prerouting priority -400; policy accept; ${rule}; }`,
    `\tchain out { type filter hook output priority -400; policy accept; ${rule}; }`,
    '}', '',
  ].join('\n');
}

export async function arm(netnsPath: string, protocol: TraceProtocol, tag: number): Promise<void> {
  await nftApply(new Netns(netnsPath), armScript(protocol, tag));
}

/** Removes the trace table; one already gone is no error (add then delete: nft 1.0.6 has no "destroy"). */
export async function disarm(netnsPath: string, tag: number): Promise<void> {
  const ns = new Netns(netnsPath);
  if (!ns.exists()) return;
  const table = `ip ${traceTableName(tag)}`;
  await nftApply(ns, `add table ${table}\ndelete table ${table}\n`);
}

export interface ProbeResult { ok: boolean; detail: string }

// Runs inside the source namespace as its own node process: Node cannot enter a namespace itself.
const SCRIPT = `
const [host, port, tag, proto, ms] = process.argv.slice(1);
const done = (ok, detail) => { console.log(JSON.stringify({ ok, detail })); process.exit(0); };
if (proto === 'tcp') {
  const s = require('net').connect({ host, port: Number(port), localPort: Number(tag) });
  s.setTimeout(Number(ms), () => { s.destroy(); done(false, 'no answer (timeout)'); });
  s.on('connect', () => { s.destroy(); done(true, 'connected'); });
  // A reset to a SYN that reached the pod: the kernel's answer for a port nothing listens on.
  s.on('error', (e) => done(false, e.code === 'ECONNREFUSED' ? 'refused: no listener on port ' + port + ' (the kernel answered RST)' : e.code || e.message));
} else {
  const s = require('dgram').createSocket('udp4');
  s.bind(Number(tag), () => s.send(Buffer.from('flatnet trace'), Number(port), host, (e) => {
    if (e) done(false, e.code || e.message);
    s.on('message', () => done(true, 'answered'));
    s.on('error', (err) => done(false, err.code || err.message));
    setTimeout(() => done(false, 'sent, no answer'), Number(ms));
  }));
}`;

/** The packet senders running now, ended by pid when a trace is interrupted. */
const senders = new Set<number>();
export function stopSenders(): void {
  for (const pid of senders) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) senders.add(child.pid);
    child.on('exit', () => { if (child.pid !== undefined) senders.delete(child.pid); });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

export async function sendTagged(netnsPath: string, o: { host: string; port: number; tag: number; protocol: TraceProtocol; timeoutMs: number }): Promise<ProbeResult> {
  if (o.protocol === 'icmp') {
    const r = await run('nsenter', [`--net=${netnsPath}`, 'ping', '-n', '-c', '1', '-W', String(Math.ceil(o.timeoutMs / 1000)), '-e', String(o.tag), o.host]);
    return { ok: r.code === 0, detail: r.code === 0 ? 'echo reply' : 'no echo reply' };
  }
  const r = await run('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', SCRIPT, o.host, String(o.port), String(o.tag), o.protocol, String(o.timeoutMs)]);
  try { return JSON.parse(r.out.trim().split('\n').pop() ?? '') as ProbeResult; } catch { return { ok: false, detail: r.out.trim() || `exit ${r.code}` }; }
}

export async function routeFact(netnsPath: string, dst: string): Promise<RouteFact | undefined> {
  const ns = new Netns(netnsPath);
  const r = await ipJson(ns, ['route', 'get', dst]);
  const route = r.ok ? r.data[0] as { dst: string; dev: string; gateway?: string } | undefined : undefined;
  if (!route) return undefined;
  const fact: RouteFact = { dst: route.dst, dev: route.dev, ...(route.gateway ? { gateway: route.gateway } : {}) };
  const link = await ipJson(ns, ['-d', 'link', 'show', 'dev', route.dev]);
  const info = link.ok ? link.data[0]?.linkinfo : undefined;
  if (info?.info_kind === 'vxlan') {
    fact.vxlan = { vni: info.info_data.id, ...(info.info_data.local ? { local: info.info_data.local } : {}) };
    const remote = route.gateway ? await vxlanRemote(ns, route.dev, route.gateway) : undefined;
    if (remote) fact.vxlan.remote = remote;
  }
  return fact;
}

/** The outer destination for a VXLAN gateway: its neighbour's MAC, then that MAC's forwarding entry. */
async function vxlanRemote(ns: Netns, dev: string, gateway: string): Promise<string | undefined> {
  const neigh = await ipJson(ns, ['neigh', 'show', 'to', gateway, 'dev', dev]);
  const mac: string | undefined = neigh.ok ? neigh.data[0]?.lladdr : undefined;
  if (!mac) return undefined;
  const w = ns.wrap('bridge', ['-j', 'fdb', 'show', 'dev', dev]);
  const r = await runCommand(w.cmd, w.args);
  if (r.code !== 0) return undefined;
  const entries = JSON.parse(r.stdout || '[]') as Array<{ mac: string; dst?: string }>;
  return entries.find((e) => e.mac === mac && e.dst)?.dst;
}

/** The entry the tagged packet made: its source address and the tag as source port or echo id. */
export async function conntrackFact(netnsPath: string, protocol: TraceProtocol, src: string, tag: number): Promise<ConntrackEntry | undefined> {
  const entries = await conntrackList(new Netns(netnsPath), { protocol });
  return entries.find((e) => e.orig.src === src && (protocol === 'icmp' ? e.orig.icmp?.id === tag : e.orig.sport === tag));
}

/**
 * Asks the kernel the question it answered for a lost packet (its route lookup, then the neighbour the
 * route needs) in `netns` (a node's, or the router's: then the packet came in from `fromNodeIp`).
 */
export async function askKernelWhy(netns: string, q: ReasonQuestion, fromNodeIp: string): Promise<KernelReason | undefined> {
  const ns = new Netns(`/run/netns/${netns}`);
  let iif = q.iif;
  if (q.where === 'router') {
    // The router's device toward the node is the one the packet came in on.
    const back = await ipJson(ns, ['route', 'get', fromNodeIp]);
    iif = back.ok ? back.data[0]?.dev : undefined;
  }
  const question = { dst: q.dst, src: q.src, ...(iif ? { iif } : {}) };
  const asked = `ip ${routeGetArgs(question).join(' ')}`;
  const r = await ipJson(ns, routeGetArgs(question));
  if (!r.ok) {
    const reason = parseRouteGetError(r.error, question);
    return { node: q.node, reason: reason ?? `route lookup failed: ${r.error}`, evidence: `${asked}: ${r.error}`, askedIn: netns, where: q.where };
  }
  const route = r.data[0] as { dst: string; dev: string; gateway?: string } | undefined;
  if (!route) return undefined;
  const routeText = `${route.dst}${route.gateway ? ` via ${route.gateway}` : ''} dev ${route.dev}`;
  const next = route.gateway ?? route.dst;
  const neigh = await ipJson(ns, ['neigh', 'show', 'to', next, 'dev', route.dev]);
  const failed = neigh.ok ? neighbourFailure(neigh.data, next, route.dev) : undefined;
  if (failed) return { node: q.node, reason: failed, evidence: `${asked}: ${routeText}; ip neigh show to ${next} dev ${route.dev}: ${JSON.stringify(neigh.data)}`, askedIn: netns, where: q.where };
  return { node: q.node, reason: `no reason found: the kernel routes it (${routeText}) and its neighbour resolves`, evidence: `${asked}: ${routeText}`, askedIn: netns, where: q.where };
}
