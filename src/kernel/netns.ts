// A network namespace is a value: Node cannot move a thread into another namespace, so work
// inside one runs as a child process (`ip -n NAME` when it is a named netns, else nsenter).
import { basename, dirname } from 'node:path';
import { existsSync } from 'node:fs';

export class Netns {
  /** null means the namespace this process runs in. */
  readonly path: string | null;
  constructor(path: string | null) { this.path = path; }

  static current(): Netns { return new Netns(null); }

  exists(): boolean { return this.path === null || existsSync(this.path); }

  /** Command and leading arguments that run `ip` inside this namespace. */
  ipCommand(): { cmd: string; args: string[] } {
    if (this.path === null) return { cmd: 'ip', args: [] };
    const dir = dirname(this.path);
    // `ip -n` opens /run/netns/NAME itself, which saves the nsenter exec (~1 ms).
    if (dir === '/run/netns' || dir === '/var/run/netns') return { cmd: 'ip', args: ['-n', basename(this.path)] };
    return { cmd: 'nsenter', args: [`--net=${this.path}`, 'ip'] };
  }

  /** Command and leading arguments that run any program inside this namespace. */
  wrap(cmd: string, args: string[]): { cmd: string; args: string[] } {
    if (this.path === null) return { cmd, args };
    return { cmd: 'nsenter', args: [`--net=${this.path}`, cmd, ...args] };
  }

  toString(): string { return this.path ?? '(own netns)'; }
}
