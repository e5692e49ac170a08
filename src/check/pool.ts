// Runs the check's probes through one worker per client namespace, within bounds, so that the check
// does not flood the machine it measures: each worker is a Node start (CPU for a moment), each probe in
// flight a connection some server must answer. A worker gets probes a few at a time and a new one as
// each result comes back; it is ended once it has none left.
import type { StreamedProbe as WorkerProbe, WorkerResult } from '../workload/probe-worker.js';

export interface PoolLimits {
  /** Workers starting at once (a start is CPU-bound: more than the cores only queues). */
  starting: number;
  /** Workers alive at once. */
  workers: number;
  /** Probes in flight per worker. */
  perWorker: number;
  /** Probes in flight over all workers. */
  total: number;
}

/**
 * Workers start two per core: a start is CPU-bound, and probes already in flight need their servers
 * scheduled meanwhile. Waiting probes cost nothing, so the in-flight bounds are wider.
 */
export function defaultLimits(cpus: number): PoolLimits {
  const cores = Math.max(1, cpus);
  return { starting: 2 * cores, workers: 64, perWorker: 32, total: 64 * cores };
}

/** What a started worker reports back. */
export interface WorkerEvents {
  ready(): void;
  result(r: WorkerResult): void;
  /** The worker is gone; `error` when it failed (its probes not answered fail with it). */
  exit(error?: string): void;
}

export interface WorkerLink {
  send(p: WorkerProbe): void;
  /** No more probes: the worker finishes those in flight and exits. */
  end(): void;
}

export type StartWorker = (netns: string, events: WorkerEvents) => WorkerLink;

interface Slot {
  netns: string;
  pending: WorkerProbe[];
  inFlight: Set<number>;
  link?: WorkerLink;
  ready: boolean;
  ended: boolean;
  gone: boolean;
}

/** Runs every probe (grouped by the namespace it runs in) and resolves with one result per probe. */
export function runPool(work: Map<string, WorkerProbe[]>, start: StartWorker, limits: PoolLimits): Promise<WorkerResult[]> {
  return new Promise((resolve) => {
    const waiting = [...work].filter(([, ps]) => ps.length).map(([netns, ps]) => ({ netns, pending: [...ps] }));
    const live: Slot[] = [];
    const results: WorkerResult[] = [];
    let starting = 0;
    let inFlight = 0;
    let pumping = false;
    let again = false;

    const onExit = (slot: Slot, error?: string) => {
      if (slot.gone) return;
      slot.gone = true;
      if (!slot.ready) starting--;
      const lost = [...slot.inFlight, ...slot.pending.map((p) => p.id)];
      for (const id of lost) results.push({ id, ok: false, ms: 0, attempts: 0, error: error ?? `probe worker in ${slot.netns} exited without answering` });
      inFlight -= slot.inFlight.size;
      slot.inFlight.clear();
      slot.pending = [];
      live.splice(live.indexOf(slot), 1);
      pump();
    };

    const startNext = () => {
      const next = waiting.shift()!;
      const slot: Slot = { ...next, inFlight: new Set(), ready: false, ended: false, gone: false };
      live.push(slot);
      starting++;
      slot.link = start(slot.netns, {
        ready: () => { if (slot.ready || slot.gone) return; slot.ready = true; starting--; pump(); },
        result: (r) => {
          if (!slot.inFlight.delete(r.id)) return;
          inFlight--;
          results.push(r);
          pump();
        },
        exit: (error) => onExit(slot, error),
      });
    };

    const step = () => {
      while (waiting.length && live.length < limits.workers && starting < limits.starting) startNext();
      // Round robin, one probe per worker per turn, so no worker takes the whole budget.
      for (let sent = true; sent && inFlight < limits.total;) {
        sent = false;
        for (const s of live) {
          if (!s.ready || s.gone || !s.pending.length || s.inFlight.size >= limits.perWorker || inFlight >= limits.total) continue;
          const p = s.pending.shift()!;
          s.inFlight.add(p.id);
          inFlight++;
          s.link!.send(p);
          sent = true;
        }
      }
      for (const s of live) {
        if (s.ready && !s.ended && !s.gone && !s.pending.length && !s.inFlight.size) { s.ended = true; s.link!.end(); }
      }
      if (!waiting.length && !live.length) resolve(results);
    };

    // Events may arrive while a step runs (a fake worker answers at once): run steps one at a time.
    function pump() {
      if (pumping) { again = true; return; }
      pumping = true;
      do { again = false; step(); } while (again);
      pumping = false;
    }
    pump();
  });
}
