// `flatnet probe-worker`: `flatnet check`'s prober inside one client namespace. With --stream its stdin
// is JSON lines, one probe a line (with its timeout and tries), and it answers each with a line as soon
// as it is judged, so the check decides how many run at once. `flatnet serve --probes` does the same
// beside serving, which spares the check a second Node start per pod. Each attempt's timer starts at
// its own connect, and a failed attempt is tried again after a short backoff: a loaded machine may
// starve a server for a moment. The one-shot form stays: {timeoutMs, targets:[...]} in, a JSON array out.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { plainAddress, probe, type ProbeAnswer, type ProbeTarget } from './probe.js';

export interface WorkerSettings {
  timeoutMs: number;
  /** Tries per probe, the first included (default 1). */
  attempts?: number;
  /** Pause before each retry; the last value repeats. */
  backoffMs?: number[];
}

export interface WorkerProbe extends ProbeTarget {
  id: number;
  /** 'refused': passes when refused (ECONNREFUSED) within `withinMs`. Default: passes when answered. */
  expect?: 'answer' | 'refused';
  withinMs?: number;
}

export interface WorkerResult { id: number; ok: boolean; ms: number; error?: string; server?: string; client?: string; attempts: number }

/** A probe as the check streams it: the target and how to try it. */
export type StreamedProbe = WorkerProbe & WorkerSettings;

/** The first line `probe-worker --stream` prints: it has started. */
export const WORKER_READY = '{"ready":true}';

/** Whether an attempt gave what the probe waits for; anything else is tried again. */
export function attemptPassed(p: WorkerProbe, r: ProbeAnswer): boolean {
  if (p.expect === 'refused') return !r.ok && r.error === 'ECONNREFUSED' && r.ms <= (p.withinMs ?? Infinity);
  return r.ok;
}

const resultOf = (id: number, r: ProbeAnswer, attempts: number): WorkerResult => ({
  id, ok: r.ok, ms: r.ms, error: r.error, server: r.answer?.pod, attempts,
  client: r.answer ? plainAddress(r.answer.client.replace(/^\[?(.*?)\]?:\d+$/, '$1')) : undefined,
});

/** A probe, tried up to `attempts` times; the result is the last attempt's, with how many it took. */
export async function probeWithRetries(p: WorkerProbe, s: WorkerSettings): Promise<WorkerResult> {
  const attempts = Math.max(1, s.attempts ?? 1);
  for (let i = 1; ; i++) {
    const r = await probe(p, s.timeoutMs);
    if (attemptPassed(p, r) || i >= attempts) return resultOf(p.id, r, i);
    const backoff = s.backoffMs ?? [];
    await sleep(backoff[Math.min(i - 1, backoff.length - 1)] ?? 0);
  }
}

function parseLine<T>(line: string, what: string): T {
  try { return JSON.parse(line) as T; } catch { throw new Error(`probe-worker: ${what} is not JSON: ${line.slice(0, 120)}`); }
}

/** Reads streamed probes, one a line, and writes each result as a line once judged; resolves when input ends and all are written. */
export async function answerProbes(input: Readable, write: (line: string) => void): Promise<void> {
  const running: Array<Promise<void>> = [];
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    const p = parseLine<StreamedProbe>(line, 'a probe');
    if (typeof p.timeoutMs !== 'number' || p.timeoutMs <= 0) throw new Error(`probe-worker: timeoutMs ${JSON.stringify(p.timeoutMs)}: expected milliseconds > 0`);
    running.push(probeWithRetries(p, p).then((r) => write(JSON.stringify(r))));
  }
  await Promise.all(running);
}

/** `flatnet probe-worker [--stream]`. */
export async function runProbeWorker(args: string[], input: Readable): Promise<number> {
  if (args.includes('--stream')) {
    process.stdout.write(`${WORKER_READY}\n`);
    await answerProbes(input, (line) => process.stdout.write(`${line}\n`));
    return 0;
  }
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(c as Buffer);
  const req = parseLine<WorkerSettings & { targets?: WorkerProbe[] }>(Buffer.concat(chunks).toString('utf8'), 'the input');
  if (typeof req.timeoutMs !== 'number' || req.timeoutMs <= 0 || !Array.isArray(req.targets)) {
    throw new Error('probe-worker: expected {"timeoutMs": N, "targets": [...]}, or --stream and one probe a line');
  }
  const results = await Promise.all(req.targets.map((t) => probeWithRetries(t, req)));
  process.stdout.write(JSON.stringify(results));
  return 0;
}
