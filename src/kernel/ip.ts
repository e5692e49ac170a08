// iproute2 in batch mode: many link/addr/route changes for the price of one process.
import { runCommand } from './exec.js';
import type { Netns } from './netns.js';
import type { IpSession } from './ip-session.js';

let session: IpSession | undefined;
/** A long-lived process (the warm CNI server) sends its own netns' forced batches to one persistent ip. */
export function useIpSession(s: IpSession | undefined): void { session = s; }
/** After a link is deleted, the persistent ip's name → index cache may hold it: the next request starts fresh. */
export function renewIpSession(): void { session?.renew(); }

export interface BatchResult {
  /** Line number (1-based) → the error ip printed for it. Only with `force`. */
  failures: Map<number, string>;
  /** With `json`, the parsed output of each command that printed any (in order). */
  outputs: unknown[];
  /** Without `json`, what the commands printed. */
  stdout: string;
}

export class IpBatchError extends Error {
  readonly failures: Map<number, string>;
  readonly lines: string[];
  constructor(lines: string[], failures: Map<number, string>, stderr: string) {
    const first = [...failures.entries()][0];
    super(first ? `ip: "${lines[first[0] - 1]}": ${first[1]}` : `ip batch failed: ${stderr.trim()}`);
    this.failures = failures;
    this.lines = lines;
  }
}

/** Parses `ip -force -batch` stderr: each error message is followed by "Command failed -:N". */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const failures = new Map<number, string>();
  let pending: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim());
    if (m) {
      failures.set(Number(m[1]), pending.join(' ').trim() || 'failed');
      pending = [];
    } else if (line.trim()) {
      pending.push(line.trim());
    }
  }
  return failures;
}

/**
 * Runs `lines` through `ip -batch -` inside `ns`. With `force`, ip goes on past failing lines
 * and the caller decides which failures are acceptable (e.g. "File exists" for an existing bridge).
 */
export async function ipBatch(ns: Netns, lines: string[], opts: { force?: boolean; json?: boolean; viaSession?: boolean } = {}): Promise<BatchResult> {
  // Only quick changes go to the session: it runs one request at a time, and a `link del` waits ~20 ms
  // in the kernel that separate processes would wait side by side.
  if (session && opts.viaSession && ns.path === null && opts.force && !opts.json) {
    const r = await session.run(lines);
    return { failures: r.failures, outputs: [], stdout: r.stdout };
  }
  const { cmd, args } = ns.ipCommand();
  const flags = [...(opts.json ? ['-j'] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  const r = await runCommand(cmd, [...args, ...flags], lines.join('\n') + '\n');
  const failures = parseBatchErrors(r.stderr);
  if (r.code !== 0 && failures.size === 0) {
    throw new IpBatchError(lines, failures, r.stderr || `exit ${r.code}`);
  }
  if (!opts.force && failures.size > 0) throw new IpBatchError(lines, failures, r.stderr);
  const outputs: unknown[] = [];
  if (opts.json) {
    for (const l of r.stdout.split('\n')) {
      const t = l.trim();
      if (t) outputs.push(JSON.parse(t));
    }
  }
  return { failures, outputs, stdout: opts.json ? '' : r.stdout };
}

/** Runs one `ip -j` query inside `ns` and returns its parsed output ([] when it printed nothing). */
export async function ipJson(ns: Netns, args: string[]): Promise<{ ok: boolean; data: any[]; error: string }> {
  const base = ns.ipCommand();
  const r = await runCommand(base.cmd, [...base.args, '-j', ...args]);
  if (r.code !== 0) return { ok: false, data: [], error: r.stderr.trim() };
  const text = r.stdout.trim();
  return { ok: true, data: text ? JSON.parse(text) : [], error: '' };
}
