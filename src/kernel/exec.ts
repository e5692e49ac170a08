// Runs kernel tools (ip, nft, nsenter) as child processes: a spawn per call in the short-lived plugin,
// or through a CommandRunner (the agent's ShellPool) in a long-lived process.
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Something that runs commands faster than a spawn per call (the agent's ShellPool). */
export interface CommandRunner { run(cmd: string, args: string[], input?: string): Promise<CommandResult> }
let runner: CommandRunner | undefined;

/** A long-lived process installs a runner; a short-lived one (the plugin) spawns directly. */
export function useCommandRunner(r: CommandRunner | undefined): void { runner = r; }

export function runCommand(cmd: string, args: string[], input?: string): Promise<CommandResult> {
  if (runner) return runner.run(cmd, args, input ?? '');
  return spawnCommand(cmd, args, input);
}

export function spawnCommand(cmd: string, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({
      code: code ?? 1,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    }));
    child.stdin.on('error', () => { /* the child may exit before reading all input */ });
    child.stdin.end(input ?? '');
  });
}
