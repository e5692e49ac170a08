// Network namespaces owned by one bench run. Every name starts with the run's prefix
// ("fnb" + random hex + "-"), so cleanup removes exactly what this run made, never the root netns
// or other runs' namespaces. Cleanup is synchronous so it also works from process 'exit' handlers.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmdirSync, rmSync } from 'node:fs';
import { runCommand } from '../../src/kernel/exec.js';

export const NETNS_DIR = '/run/netns';

/** Runs a tool and resolves with its output; rejects on a non-zero exit. Not timed. */
export async function run(cmd: string, args: string[], input = ''): Promise<string> {
  const r = await runCommand(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Names of all named network namespaces (`ip netns list` prints "NAME (id: N)"). */
export function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

export class BenchNamespaces {
  /** "fnb<hex>-": every namespace this run creates starts with it. */
  readonly prefix: string;
  /** Child processes in flight (plugin calls), killed by pid on abort. */
  readonly children = new Set<ChildProcess>();
  /** Extra paths (IPAM data dirs) removed at cleanup. */
  readonly tempPaths: string[] = [];
  /** Directories removed at cleanup only if empty (a shared one such as /run/flatnet/cni that this run made). */
  readonly emptyDirs: string[] = [];
  private cleaned = false;

  constructor() {
    this.prefix = `fnb${randomBytes(3).toString('hex')}-`;
  }

  name(suffix: string): string { return this.prefix + suffix; }
  path(name: string): string { return `${NETNS_DIR}/${name}`; }

  private own(name: string): void {
    if (!name.startsWith(this.prefix)) throw new Error(`refusing to touch netns "${name}": not under prefix ${this.prefix}`);
  }

  /** Creates the namespaces with one `ip -batch` (one spawn for any count). */
  async create(names: string[]): Promise<void> {
    if (names.length === 0) return;
    names.forEach((n) => this.own(n));
    await run('ip', ['-batch', '-'], names.map((n) => `netns add ${n}\n`).join(''));
  }

  /** Deletes the namespaces with one `ip -batch`. */
  async remove(names: string[]): Promise<void> {
    if (names.length === 0) return;
    names.forEach((n) => this.own(n));
    await run('ip', ['-batch', '-'], names.map((n) => `netns del ${n}\n`).join(''));
  }

  /** This run's namespaces that still exist. */
  leftovers(): string[] {
    return listNetns().filter((n) => n.startsWith(this.prefix));
  }

  /**
   * Kills in-flight plugin processes and the warm server (by pid), deletes every namespace with this run's prefix
   * (pods first, then the node namespaces, whose bridges go with them), removes temp dirs.
   * Idempotent and synchronous; returns the namespaces that could not be removed.
   */
  cleanupSync(): string[] {
    if (!this.cleaned) {
      this.cleaned = true;
      for (const child of this.children) {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
        }
      }
      this.children.clear();
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const left = this.leftovers();
      if (left.length === 0) break;
      // Pod namespaces first: a node namespace is where the host veth ends live.
      const ordered = [...left.filter((n) => !n.includes('-node-')), ...left.filter((n) => n.includes('-node-'))];
      spawnSync('ip', ['-force', '-batch', '-'], {
        input: ordered.map((n) => `netns del ${n}\n`).join(''),
        stdio: ['pipe', 'ignore', 'ignore'],
      });
    }
    for (const p of this.tempPaths.splice(0)) {
      try { rmSync(p, { recursive: true, force: true }); } catch { /* best effort */ }
    }
    for (const d of this.emptyDirs.splice(0)) {
      try { rmdirSync(d); } catch { /* not empty: someone else's server uses it */ }
    }
    return this.leftovers();
  }

  /** Cleans up on normal exit, on SIGINT/SIGTERM/SIGHUP and on uncaught errors. */
  installExitHandlers(): void {
    process.on('exit', () => { this.cleanupSync(); });
    const signals: Array<[NodeJS.Signals, number]> = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]];
    for (const [sig, num] of signals) {
      process.on(sig, () => {
        process.stderr.write(`\nbench: ${sig}, removing namespaces ${this.prefix}*\n`);
        const left = this.cleanupSync();
        if (left.length) process.stderr.write(`bench: could not remove: ${left.join(' ')}\n`);
        process.exit(128 + num);
      });
    }
    const fatal = (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      this.cleanupSync();
      process.exit(1);
    };
    process.on('uncaughtException', fatal);
    process.on('unhandledRejection', fatal);
  }
}
