// Runs kernel tools through a few long-lived `sh` processes instead of spawning each from Node. A
// long-lived daemon (the agent serving CNI calls) forks a large process for every `ip`: ~2 ms of its
// own CPU a spawn. A small shell forks in a fraction of that, so the agent only writes a line to a pipe.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { CommandResult } from './exec.js';

interface Job { cmd: string; args: string[]; input: string; resolve: (r: CommandResult) => void; reject: (e: Error) => void }

/** Single-quotes a word for sh. */
export const shellQuote = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

/**
 * The script one job is: the command reading `input` from a quoted here-document (so input always ends
 * in a newline), then end markers on both streams. Pure.
 */
export function jobScript(cmd: string, args: string[], input: string, token: string): string {
  const text = input.endsWith('\n') || input === '' ? input : `${input}\n`;
  return `${[cmd, ...args].map(shellQuote).join(' ')} <<'FN_IN_${token}'\n${text}FN_IN_${token}\n`
    + `printf '\\nFN_END_${token} %d\\n' "$?"; printf '\\nFN_END_${token}\\n' >&2\n`;
}

class ShellWorker {
  private readonly sh: ChildProcessWithoutNullStreams;
  private readonly queue: Job[] = [];
  private current?: { job: Job; token: string; out: string; err: string; code?: number; errDone: boolean };
  private timer?: NodeJS.Timeout;
  dead = false;

  constructor(private readonly timeoutMs: number) {
    // Its own process group: a job past its deadline is ended with everything it started.
    this.sh = spawn('sh', [], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.sh.stdout.setEncoding('utf8');
    this.sh.stderr.setEncoding('utf8');
    this.sh.stdout.on('data', (d: string) => this.onOut(d));
    this.sh.stderr.on('data', (d: string) => this.onErr(d));
    this.sh.on('exit', () => this.fail(new Error('shell worker exited')));
    this.sh.on('error', (e) => this.fail(e));
    this.sh.stdin.on('error', () => { /* reported by exit */ });
    this.hold(false);
  }

  /** An idle worker must not keep a finished process alive; a busy one must, until its answer arrives. */
  private hold(busy: boolean): void {
    const method = busy ? 'ref' : 'unref';
    this.sh[method]();
    for (const s of [this.sh.stdin, this.sh.stdout, this.sh.stderr]) (s as unknown as Record<string, (() => void) | undefined>)[method]?.();
  }

  get load(): number { return this.queue.length + (this.current ? 1 : 0); }

  run(job: Job): void { this.queue.push(job); this.next(); }

  private next(): void {
    if (this.current || this.dead) return;
    const job = this.queue.shift();
    if (!job) { this.hold(false); return; }
    this.hold(true);
    const token = randomBytes(8).toString('hex');
    this.current = { job, token, out: '', err: '', errDone: false };
    // A command that never answers (nsenter or ip opening a FIFO) must not hold its caller, or this worker, for good.
    this.timer = setTimeout(() => {
      this.fail(new Error(`${job.cmd} ${job.args.join(' ')}: no answer within ${this.timeoutMs} ms; it was ended`));
      try { process.kill(-this.sh.pid!, 'SIGKILL'); } catch { /* gone already */ }
    }, this.timeoutMs);
    this.sh.stdin.write(jobScript(job.cmd, job.args, job.input, token));
  }

  private onOut(d: string): void {
    const c = this.current;
    if (!c) return;
    c.out += d;
    const m = new RegExp(`\\nFN_END_${c.token} (\\d+)\\n$`).exec(c.out);
    if (m) { c.code = Number(m[1]); c.out = c.out.slice(0, m.index); this.finish(); }
  }

  private onErr(d: string): void {
    const c = this.current;
    if (!c) return;
    c.err += d;
    const marker = `\nFN_END_${c.token}\n`;
    if (c.err.endsWith(marker)) { c.err = c.err.slice(0, -marker.length); c.errDone = true; this.finish(); }
  }

  private finish(): void {
    const c = this.current;
    if (!c || c.code === undefined || !c.errDone) return;
    this.current = undefined;
    clearTimeout(this.timer);
    c.job.resolve({ code: c.code, stdout: c.out, stderr: c.err });
    this.next();
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.timer);
    for (const j of [...(this.current ? [this.current.job] : []), ...this.queue.splice(0)]) j.reject(e);
    this.current = undefined;
  }

  close(): void { this.dead = true; this.sh.stdin.end(); }
}

/** How long one command may run: an `ip` batch of a pod takes milliseconds, a busy node's far less than this. */
export const DEFAULT_JOB_TIMEOUT_MS = 15_000;

export class ShellPool {
  private readonly workers: ShellWorker[] = [];
  constructor(private readonly size = 4, private readonly timeoutMs = DEFAULT_JOB_TIMEOUT_MS) {}

  run(cmd: string, args: string[], input = ''): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      for (let i = this.workers.length - 1; i >= 0; i--) if (this.workers[i].dead) this.workers.splice(i, 1);
      let w = this.workers.find((x) => x.load === 0);
      if (!w && this.workers.length < this.size) { w = new ShellWorker(this.timeoutMs); this.workers.push(w); }
      w ??= this.workers.reduce((a, b) => (b.load < a.load ? b : a));
      w.run({ cmd, args, input, resolve, reject });
    });
  }

  close(): void { for (const w of this.workers.splice(0)) w.close(); }
}
