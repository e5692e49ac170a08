// The lines flatnet-nflog-read (src/kernel/nflog-read.c) prints, as data. Pure.

/** One packet the kernel logged to the drop group. */
export interface NflogRecord {
  /** Milliseconds since the epoch. */
  time: number;
  prefix: string;
  family?: 4 | 6;
  proto?: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  tcpflags?: number;
  icmptype?: number;
  indev?: number;
  outdev?: number;
}

export type ReaderLine = { kind: 'ready' } | { kind: 'lost' } | { kind: 'packet'; record: NflogRecord };

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** One line of the reader's output; undefined for a line that is not one (the reader's own stderr, say). */
export function parseReaderLine(line: string): ReaderLine | undefined {
  let o: Record<string, unknown>;
  try { o = JSON.parse(line) as Record<string, unknown>; } catch { return undefined; }
  if (typeof o !== 'object' || o === null) return undefined;
  if (o.ready === true) return { kind: 'ready' };
  if (o.lost === true) return { kind: 'lost' };
  const time = num(o.time);
  const prefix = str(o.prefix);
  if (time === undefined || prefix === undefined) return undefined;
  const family = o.family === 4 || o.family === 6 ? o.family : undefined;
  return {
    kind: 'packet',
    record: { time, prefix, family, proto: str(o.proto), src: str(o.src), dst: str(o.dst), sport: num(o.sport), dport: num(o.dport),
      tcpflags: num(o.tcpflags), icmptype: num(o.icmptype), indev: num(o.indev), outdev: num(o.outdev) },
  };
}
