// The check's processes: a `flatnet serve --probes` in every pod namespace (and on the external host)
// that answers probes and also runs those whose client is its namespace, and a `flatnet probe-worker
// --stream` where no server runs (node namespaces). Both speak JSON lines (workload/probe-worker.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WORKER_READY, type StreamedProbe, type WorkerResult } from '../workload/probe-worker.js';
import type { StartWorker, WorkerEvents, WorkerLink } from './pool.js';

const inNetns = (netns: string, argv: string[]) => ['nsenter', `--net=/run/netns/${netns}`, ...argv];

const asResult = (line: string): WorkerResult | undefined => {
  try {
    const r = JSON.parse(line) as WorkerResult;
    return typeof r?.id === 'number' ? r : undefined;
  } catch { return undefined; }
};

/** Sends probes as lines to a child's stdin. */
const sender = (child: ChildProcess) => (p: StreamedProbe) => { child.stdin!.write(`${JSON.stringify(p)}\n`); };

/** A `flatnet serve --probes` the check started in one namespace. */
export class CheckServer {
  private events?: WorkerEvents;
  private err = '';
  /** Why it exited, once it has. */
  private gone?: string;

  private constructor(readonly netns: string, private readonly child: ChildProcess) {}

  /** Starts it and resolves once it listens (it prints one line then). */
  static start(flatnet: string[], netns: string, name: string, port: number): Promise<CheckServer> {
    const [cmd, ...args] = inNetns(netns, [...flatnet, 'serve', '--probes', '--port', `${port}/tcp`, '--name', name]);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const server = new CheckServer(netns, child);
    child.stdin!.on('error', () => undefined); // a server that died says so by its exit
    child.stderr!.on('data', (b: Buffer) => { server.err += b.toString(); });
    return new Promise((resolve, reject) => {
      let listening = false;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!listening) { listening = true; resolve(server); return; }
        const r = asResult(line);
        if (r) server.events?.result(r);
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        const why = `check server in ${netns} exited (${code ?? signal}): ${server.err.trim()}`;
        server.gone = why;
        if (!listening) reject(new Error(why));
        server.events?.exit(why);
        server.events = undefined;
      });
    });
  }

  /** Probes from this namespace go through the server: ready at once, no Node start. */
  link(ev: WorkerEvents): WorkerLink {
    if (this.gone) {
      const why = this.gone;
      queueMicrotask(() => ev.exit(why));
      return { send: () => undefined, end: () => undefined };
    }
    this.events = ev;
    queueMicrotask(() => ev.ready());
    return {
      send: sender(this.child),
      end: () => { this.events = undefined; queueMicrotask(() => ev.exit()); },
    };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

/** A `flatnet probe-worker --stream` in a namespace: ready once Node has started. */
function spawnWorker(flatnet: string[], netns: string, ev: WorkerEvents): WorkerLink {
  const [cmd, ...args] = inNetns(netns, [...flatnet, 'probe-worker', '--stream']);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  child.stdin!.on('error', () => undefined);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === WORKER_READY) return ev.ready();
    const r = asResult(line);
    if (r) ev.result(r);
  });
  child.once('error', (e) => ev.exit(`probe worker in ${netns}: ${e.message}`));
  child.once('close', (code, signal) => ev.exit(code === 0 ? undefined : `probe worker in ${netns} failed (${code ?? signal}): ${err.trim()}`));
  return { send: sender(child), end: () => child.stdin!.end() };
}

/** Probes run in the namespace's check server when it has one, else in a worker started for them. */
export function probeRunners(flatnet: string[], servers: Map<string, CheckServer>): StartWorker {
  return (netns, ev) => servers.get(netns)?.link(ev) ?? spawnWorker(flatnet, netns, ev);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]).then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
