// One long-lived `ip -force -batch -` in this process's network namespace: the warm CNI server's node
// side (veth, bridge port, DEL's link del) costs a line on a pipe instead of a process. Requests run
// one after another, which costs nothing: the kernel serializes link changes under rtnl_lock anyway.
// Each request ends with a probe of a device that cannot exist, whose error marks the request's end.
//
// A persistent ip is a cache as well as a pipe: iproute2 6.1 remembers name → ifindex for every name it
// resolved, so after a link is deleted (DEL, or an operator deleting cni0) and made again under the same
// name, the session sends the dead index ("No such device"); `neigh` then even exits. So callers renew()
// the session after deleting a link, and retry a request whose answer shows stale state on a fresh one.
// A request that gets no answer in time (ip blocked opening a FIFO, a wedged kernel) kills the ip: the
// next request starts a new one.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface SessionResult {
  /** Request line (1-based) → the error ip printed for it. */
  failures: Map<number, string>;
  /** What the request's commands printed (ip's plain output). */
  stdout: string;
}

/** ip ran no answer for the request: it died or was killed at its deadline. What ran of it is unknown. */
export class IpSessionError extends Error {}

/** How long one request may take by default: a `link del` waits ~20 ms in the kernel, a busy node far less than this. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

interface Request { lines: string[]; timeoutMs: number; resolve: (r: SessionResult) => void; reject: (e: Error) => void }

/** Splits a request's output into command output and per-line failures; `first` is its first line's number in the session. Pure. */
export function parseSessionOutput(text: string, first: number): SessionResult {
  const failures = new Map<number, string>();
  const out: string[] = [];
  let pending: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim());
    if (m) { failures.set(Number(m[1]) - first + 1, pending.join(' ').trim() || 'failed'); pending = []; continue; }
    // ip's own output (a `link show`) starts with an index or is indented; anything else is an error message.
    if (/^\d+: |^\s/.test(line)) out.push(line);
    else if (line.trim()) pending.push(line.trim());
  }
  return { failures, stdout: out.length ? out.join('\n') + '\n' : '' };
}

/** An answer that names a device the kernel does not know: after a re-create, the session's cached index. Pure. */
export const isStaleDeviceAnswer = (msg: string): boolean =>
  /No such device|Cannot find device|does not exist/.test(msg);

export class IpSession {
  private child?: ChildProcessWithoutNullStreams;
  private readonly queue: Request[] = [];
  private busy = false;
  private renewing = false;
  /** Lines written to the current ip process: its "Command failed -:N" counts from 1 over all of them. */
  private written = 0;
  private buf = '';
  private onData?: () => void;

  constructor(private readonly defaultTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS) {}

  /** The pid of the current ip process (tests end it to check recovery). */
  get pid(): number | undefined { return this.child?.pid; }

  private ensure(): ChildProcessWithoutNullStreams {
    if (this.renewing) { this.renewing = false; this.stop(); }
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    // stderr joins stdout so messages and the end marker arrive in order; stdbuf makes ip flush each line.
    const child = spawn('sh', ['-c', 'exec stdbuf -oL -eL ip -force -batch - 2>&1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { if (this.child === child) { this.buf += d; this.onData?.(); } });
    child.stdin.on('error', () => { /* reported by exit */ });
    child.on('exit', () => { if (this.child === child) { this.child = undefined; this.onData?.(); } });
    this.child = child;
    this.written = 0;
    this.buf = '';
    return child;
  }

  /** The next request runs on a new ip, with nothing cached: call after deleting a link. */
  renew(): void { this.renewing = true; }

  run(lines: string[], opts: { timeoutMs?: number } = {}): Promise<SessionResult> {
    if (lines.some((l) => l.includes('\n'))) return Promise.reject(new Error('ip session: a line holds a newline'));
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    return new Promise((resolve, reject) => { this.queue.push({ lines, timeoutMs, resolve, reject }); void this.next(); });
  }

  private hold(on: boolean): void {
    const c = this.child;
    if (!c) return;
    const m = on ? 'ref' : 'unref';
    c[m]();
    // A pipe without its handle yet would queue the call on 'connect'; only live handles are toggled.
    for (const s of [c.stdin, c.stdout, c.stderr]) {
      const stream = s as unknown as { _handle?: unknown } & Record<string, (() => void) | undefined>;
      if (stream._handle) stream[m]?.();
    }
  }

  private async next(): Promise<void> {
    if (this.busy) return;
    const req = this.queue.shift();
    if (!req) { this.hold(false); return; }
    this.busy = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const child = this.ensure();
      this.hold(true);
      const token = `fz${randomBytes(6).toString('hex')}`;
      const first = this.written + 1;
      this.written += req.lines.length + 1;
      const endMarker = `Device "${token}" does not exist.`;
      const text = await new Promise<string>((resolve, reject) => {
        timer = setTimeout(() => {
          // Its state is unknown and it may never read again: end it; the next request starts a new ip.
          this.stop();
          reject(new IpSessionError(`ip session: no answer within ${req.timeoutMs} ms to "${req.lines[0]}"…; ip was ended`));
        }, req.timeoutMs);
        this.onData = () => {
          const at = this.buf.indexOf(endMarker);
          if (at >= 0) {
            // The marker's own "Command failed" line may still be on its way.
            const failedAt = this.buf.indexOf('Command failed', at);
            const tail = failedAt < 0 ? -1 : this.buf.indexOf('\n', failedAt);
            if (tail < 0) return;
            const chunk = this.buf.slice(0, at);
            this.buf = this.buf.slice(tail + 1);
            resolve(chunk);
          } else if (!this.child) reject(new IpSessionError(`ip session ended: ${this.buf.trim().slice(-200)}`));
        };
        child.stdin.write(`${req.lines.join('\n')}\nlink show dev ${token}\n`);
      });
      req.resolve(parseSessionOutput(text, first));
    } catch (err) {
      req.reject(err as Error);
    } finally {
      clearTimeout(timer);
      this.onData = undefined;
      this.busy = false;
      void this.next();
    }
  }

  /** Ends the current ip by its pid (a blocked one never reads its stdin's end). */
  private stop(): void {
    const c = this.child;
    this.child = undefined;
    if (!c) return;
    c.stdin.end();
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }

  close(): void { this.stop(); }
}
