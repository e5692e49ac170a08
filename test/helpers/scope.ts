// A test's scope: every namespace, process and directory it makes carries a per-run prefix and is
// removed at the end, also when the test fails or the runner is interrupted.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const live = new Set<TestScope>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const all = () => { for (const s of [...live]) s.cleanupSync(); };
  process.on('exit', all);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => { all(); process.exit(130); });
  }
}

export class TestScope {
  /** Short, unique per run: namespace names and interface names derive from it. */
  readonly prefix: string;
  readonly dir: string;
  private readonly netnses: string[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly cleanups: Array<() => void> = [];

  constructor(label = 't') {
    this.prefix = `fnt${label}${randomBytes(3).toString('hex')}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
    live.add(this);
    hookExit();
  }

  /** Creates a network namespace named `${prefix}-${name}` with lo up; returns its name. */
  netns(name: string): string {
    const full = `${this.prefix}-${name}`;
    execFileSync('ip', ['netns', 'add', full]);
    this.netnses.push(full);
    execFileSync('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
    return full;
  }

  /** Tracks a netns made by code under test so cleanup removes it too. */
  adoptNetns(name: string): void { this.netnses.push(name); }

  /** Ends this child (by its pid) at cleanup, unless it has exited: a pid that ended may be reused. */
  adoptProcess(child: ChildProcess): void { this.children.push(child); }

  onCleanup(fn: () => void): void { this.cleanups.push(fn); }

  /**
   * Processes still inside our namespaces (a plugin a runtime started, a server) are ours by
   * construction; an interrupted run must not leave one writing into a removed directory.
   */
  private killProcessesInNetnses(): void {
    const sleep = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 2000;
    for (;;) {
      const pids = this.netnses.flatMap((ns) => {
        const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
        return r.status === 0 ? r.stdout.split('\n').filter(Boolean).map(Number) : [];
      }).filter((pid) => pid !== process.pid);
      if (pids.length === 0 || Date.now() > deadline) return;
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      Atomics.wait(sleep, 0, 0, 20);
    }
  }

  cleanupSync(): void {
    if (!live.has(this)) return;
    live.delete(this);
    for (const fn of this.cleanups.reverse()) { try { fn(); } catch { /* keep going */ } }
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    this.killProcessesInNetnses();
    for (const ns of this.netnses.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Path of a named netns, as runtimes pass it in CNI_NETNS. */
export const netnsPath = (name: string): string => `/run/netns/${name}`;

/** Runs a command inside a namespace, returning stdout; throws on non-zero exit. */
export function inNetns(ns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('nsenter', [`--net=${netnsPath(ns)}`, cmd, ...args], { encoding: 'utf8', input });
}
