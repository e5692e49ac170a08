// host-local's allocation: one address per range set, round-robin from the last reservation, so a
// released address is not handed out again at once (stale ARP/conntrack entries would hit the new pod).
import { CniCode, CniError } from '../cni/errors.js';
import type { Allocation, Attachment, ParsedIpam, ParsedRange } from './types.js';
import { formatIp, parseIp, type Family } from './addr.js';
import { describeRange } from './config.js';
import { describeHolder, holdsExactly, type IpamStore } from './store.js';

/** A range with its bounds as numbers. */
interface Span {
  range: ParsedRange;
  start: bigint;
  end: bigint;
  network: bigint;
  broadcast: bigint | undefined; // IPv4 only
  gateway: bigint;
}

function toSpan(range: ParsedRange): Span {
  const num = (text: string) => parseIp(text)!.value;
  const network = num(range.subnet.slice(0, range.subnet.indexOf('/')));
  const hostBits = BigInt((range.version === 4 ? 32 : 128) - range.prefixLength);
  return {
    range,
    start: num(range.rangeStart),
    end: num(range.rangeEnd),
    network,
    broadcast: range.version === 4 ? network + (1n << hostBits) - 1n : undefined,
    gateway: num(range.gateway),
  };
}

/** The gateway, the network address and the IPv4 broadcast are never handed to a pod. */
const usable = (s: Span, v: bigint) => v !== s.gateway && v !== s.network && v !== s.broadcast;
const inSpan = (s: Span, v: bigint) => v >= s.start && v <= s.end;

function usableCount(s: Span): bigint {
  const excluded = new Set([s.gateway, s.network, s.broadcast].filter((v): v is bigint => v !== undefined && inSpan(s, v)));
  return s.end - s.start + 1n - BigInt(excluded.size);
}

const describeSet = (set: Span[]) => set.map((s) => describeRange(s.range)).join('; ');

/** Which range set (and range) an address belongs to, by the allocatable interval. */
function locate(sets: Span[][], version: Family, v: bigint): { setIndex: number; span: Span } | undefined {
  for (let i = 0; i < sets.length; i++) {
    const span = sets[i].find((s) => s.range.version === version && inSpan(s, v));
    if (span) return { setIndex: i, span };
  }
  return undefined;
}

function toAllocation(ip: string, span: Span, setIndex: number, reused = false): Allocation {
  const r = span.range;
  return { address: `${ip}/${r.prefixLength}`, ip, gateway: r.gateway, version: r.version, rangeSetIndex: setIndex, reused };
}

/** Validates requested addresses before taking the lock: each must be usable and in its own range set. */
function assignRequested(sets: Span[][], requested: string[]): Map<number, { ip: string; span: Span }> {
  const wanted = new Map<number, { ip: string; span: Span }>();
  for (const text of requested) {
    const ip = parseIp(text.trim());
    if (!ip) throw new CniError(CniCode.InvalidConfig, `requested IP address ${JSON.stringify(text)} is not a valid IP address`);
    const canonical = formatIp(ip);
    const hit = locate(sets, ip.version, ip.value);
    if (!hit) {
      throw new CniError(CniCode.InvalidConfig,
        `requested IP address ${canonical} is not in any configured range (${sets.map(describeSet).join('; ')})`);
    }
    if (!usable(hit.span, ip.value)) {
      throw new CniError(CniCode.InvalidConfig,
        `requested IP address ${canonical} is the gateway, network or broadcast address of ${hit.span.range.subnet}`);
    }
    const prior = wanted.get(hit.setIndex);
    if (prior && prior.ip !== canonical) {
      throw new CniError(CniCode.InvalidConfig,
        `requested IP addresses ${prior.ip} and ${canonical} are both in range set ${hit.setIndex}: at most one per range set`);
    }
    wanted.set(hit.setIndex, { ip: canonical, span: hit.span });
  }
  return wanted;
}

/** Candidates after the last reservation, through every range of the set in order, wrapping around. */
function* roundRobin(set: Span[], last: bigint | undefined): Generator<{ v: bigint; span: Span }> {
  let r = last === undefined ? -1 : set.findIndex((s) => inSpan(s, last));
  const from = r < 0 ? set[0].start : last! + 1n;
  if (r < 0) r = 0;
  for (let k = 0; k <= set.length; k++) {
    const span = set[(r + k) % set.length];
    const lo = k === 0 ? from : span.start;
    const hi = k === set.length ? from - 1n : span.end; // the final lap ends where the first began
    for (let v = lo; v <= hi; v++) yield { v, span };
  }
}

function reserveNext(store: IpamStore, set: Span[], setIndex: number, a: Attachment, taken: Set<string>): Allocation {
  const version = set[0].range.version;
  const lastText = store.lastReserved(setIndex);
  const last = parseIp(lastText);
  for (const { v, span } of roundRobin(set, last?.version === version ? last.value : undefined)) {
    if (!usable(span, v)) continue;
    const ip = formatIp({ version, value: v });
    if (taken.has(ip)) continue;
    if (store.reserve(ip, a, setIndex)) return toAllocation(ip, span, setIndex);
    taken.add(ip); // taken by a writer outside our lock (e.g. host-local itself)
  }
  const total = set.reduce((n, s) => n + usableCount(s), 0n);
  throw new CniError(CniCode.TryAgainLater,
    `no free address in range set ${setIndex} (${describeSet(set)}): all ${total} addresses are reserved`);
}

function reserveRequested(store: IpamStore, want: { ip: string; span: Span }, setIndex: number, a: Attachment): Allocation {
  if (store.reserve(want.ip, a, setIndex)) return toAllocation(want.ip, want.span, setIndex);
  const holder = store.list().find((r) => r.ip === want.ip);
  throw new CniError(CniCode.TryAgainLater,
    `requested IP address ${want.ip} is already reserved by ${describeHolder(holder)} in range set ${setIndex} (${describeRange(want.span.range)})`);
}

/**
 * One address per range set for `a`. A retried ADD gets back what it holds; a range set it holds
 * nothing in (an earlier ADD died half-way) is filled. On failure nothing reserved here is kept.
 */
export async function allocate(store: IpamStore, ipam: ParsedIpam, a: Attachment, requested: string[]): Promise<Allocation[]> {
  const sets = ipam.rangeSets.map((set) => set.map(toSpan));
  const wanted = assignRequested(sets, requested);
  return store.withLock(() => {
    // One listing answers both "is this a retry?" and "which addresses are taken?".
    const records = store.list();
    const taken = new Set(records.map((r) => r.ip));
    const held = new Map<number, Allocation>();
    // Only exact records count: a legacy id-only one may belong to another interface of the pod.
    for (const r of records) {
      if (!holdsExactly(r, a)) continue;
      const p = parseIp(r.ip);
      const hit = p && locate(sets, p.version, p.value);
      if (hit && !held.has(hit.setIndex)) held.set(hit.setIndex, toAllocation(r.ip, hit.span, hit.setIndex, true));
    }
    const made: string[] = [];
    try {
      return sets.map((set, i) => {
        const existing = held.get(i);
        if (existing) return existing;
        const want = wanted.get(i);
        const al = want ? reserveRequested(store, want, i, a) : reserveNext(store, set, i, a, taken);
        made.push(al.ip);
        return al;
      });
    } catch (err) {
      for (const ip of made) {
        try { store.releaseIp(ip); } catch { /* report the original failure */ }
      }
      throw err;
    }
  });
}

/**
 * STATUS: the first range set with no address left for a new attachment, or undefined when every
 * set has one. Read without the lock: an answer about a moment, as STATUS is.
 */
export function exhaustedRangeSet(store: IpamStore, ipam: ParsedIpam): { setIndex: number; total: bigint; ranges: string } | undefined {
  const sets = ipam.rangeSets.map((set) => set.map(toSpan));
  const used = sets.map(() => 0n);
  for (const r of store.list()) {
    const p = parseIp(r.ip);
    const hit = p && locate(sets, p.version, p.value);
    if (hit && usable(hit.span, p.value)) used[hit.setIndex]++;
  }
  for (let i = 0; i < sets.length; i++) {
    const total = sets[i].reduce((n, s) => n + usableCount(s), 0n);
    if (used[i] >= total) return { setIndex: i, total, ranges: describeSet(sets[i]) };
  }
  return undefined;
}

/** Releases every address `a` holds; returns them (empty when nothing was held). */
export async function releaseAttachment(store: IpamStore, a: Attachment): Promise<string[]> {
  return store.withLock(() => store.releaseByAttachment(a));
}

/** The addresses `a` holds, without taking the lock: records appear atomically, so reading is safe. */
export function findAttachment(store: IpamStore, a: Attachment): string[] {
  return store.findByAttachment(a);
}

const key = (a: Attachment) => JSON.stringify([a.containerId, a.ifname]);

/**
 * CNI GC: releases every reservation not held by one of `valid`, and unreadable records. Legacy
 * id-only records stay while their container has any valid attachment. Stale temp files go too.
 */
export async function gcAttachments(store: IpamStore, valid: Attachment[]): Promise<string[]> {
  const keep = new Set(valid.map(key));
  const keepIds = new Set(valid.map((v) => v.containerId));
  return store.withLock(() => store.list()
    .filter((r) => !(r.attachment ? keep.has(key(r.attachment)) : r.legacyContainerId !== undefined && keepIds.has(r.legacyContainerId)))
    .map((r) => r.ip)
    .filter((ip) => store.releaseIp(ip)));
}
