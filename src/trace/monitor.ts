// `nft monitor` in one node's namespace for the length of a trace. The monitor prints ruleset changes
// and trace events in the order the kernel sent them, so the trace table's own "add table" says the
// monitor listens (a probe table added and deleted until it shows), and its "delete table" says every trace event before it has been read: no timers.
import { spawn, type ChildProcess } from 'node:child_process';
import { parseTraceLine, type TraceEvent } from './events.js';
import { Netns } from '../kernel/netns.js';
import { nftApply } from '../kernel/nft.js';

export class NodeMonitor {
  readonly events: TraceEvent[] = [];
  private readonly child: ChildProcess;
  private buffer = '';
  readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  private exited = false;

  constructor(readonly node: string, netnsPath: string) {
    this.child = spawn('nsenter', [`--net=${netnsPath}`, 'nft', 'monitor'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.take(chunk));
    this.child.on('exit', () => { this.exited = true; this.wake(); });
    this.child.on('error', () => { this.exited = true; this.wake(); });
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    const parts = this.buffer.split('\n');
    this.buffer = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      const ev = parseTraceLine(line);
      if (ev) this.events.push(ev);
    }
    this.wake();
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  /** Resolves once a line equal to `line` was printed; rejects after `timeoutMs` or if nft exits. */
  async waitLine(line: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.some((l) => l.trim() === line)) {
      if (this.exited) throw new Error(`nft monitor on ${this.node} exited`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nft monitor on ${this.node}: no "${line}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /**
   * Resolves once the monitor listens: nft subscribes some time after it starts, so a probe table is
   * added and deleted until the monitor prints its deletion.
   */
  async listening(netnsPath: string, probeTable: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const line = `delete table ip ${probeTable}`;
    for (;;) {
      await nftApply(new Netns(netnsPath), `add table ip ${probeTable}\ndelete table ip ${probeTable}\n`);
      try { await this.waitLine(line, 100); return; } catch (err) {
        if (this.exited || Date.now() > deadline) throw err;
      }
    }
  }

  /** Ends the monitor by its pid. */
  stop(): void {
    if (!this.exited && this.child.pid !== undefined) {
      try { process.kill(this.child.pid, 'SIGTERM'); } catch { /* gone */ }
    }
  }
}
