// The lab's processes (etcd, controller, agents, containers) are daemons tracked by pid file. A pid file
// holds the pid and the process's start time from /proc, so a recycled pid is never mistaken for ours
// and never signalled.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DaemonSpec {
  name: string;
  argv: string[];
  /** Named network namespace to run in (nsenter execs the program, so the pid is the program's). */
  netns?: string;
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  logFile: string;
  pidFile: string;
  /**
   * Record the program's child instead of the program: `unshare --fork` stays as the parent of a pid
   * namespace's init and ignores SIGTERM, so the init is the process to signal and to watch.
   */
  recordChild?: boolean;
  /** Called when the process ends, with how it ended and the pid this returned (a supervisor records it). */
  onExit?: (code: number | null, signal: NodeJS.Signals | null, pid: number) => void;
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), the state letter and the parent; undefined when gone. */
function procStat(pid: number): { start: string; state: string; ppid: number } | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  // The command name (field 2) may hold spaces and parentheses: fields after it start past the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], start: rest[19], ppid: Number(rest[1]) };
}

/** The first child of `pid` once it has forked one (this kernel has no /proc/PID/task/TID/children). */
async function childOf(pid: number, name: string, logFile: string): Promise<number> {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    for (const e of readdirSync('/proc')) {
      if (/^\d+$/.test(e) && procStat(Number(e))?.ppid === pid) return Number(e);
    }
    const st = procStat(pid);
    if (!st || st.state === 'Z') break;
    await sleep(10);
  }
  throw new Error(`${name} exited before it started its container; see ${logFile}`);
}

interface PidRecord { pid: number; start: string }

function readPidFile(pidFile: string): PidRecord | undefined {
  try {
    const [pid, start] = readFileSync(pidFile, 'utf8').trim().split(/\s+/);
    return Number(pid) > 0 ? { pid: Number(pid), start } : undefined;
  } catch { return undefined; }
}

/** The pid the file names, if that very process still runs (not a zombie, not a recycled pid). */
export function livePid(pidFile: string): number | undefined {
  const rec = readPidFile(pidFile);
  if (!rec) return undefined;
  const st = procStat(rec.pid);
  if (!st || st.start !== rec.start || st.state === 'Z' || st.state === 'X') return undefined;
  return rec.pid;
}

export const isAlive = (pidFile: string): boolean => livePid(pidFile) !== undefined;

/** Starts a detached daemon logging to `logFile`; resolves with its pid once the pid file is written. */
export async function startDaemon(spec: DaemonSpec): Promise<number> {
  if (isAlive(spec.pidFile)) throw new Error(`${spec.name} is already running (pid ${livePid(spec.pidFile)}, ${spec.pidFile})`);
  mkdirSync(dirname(spec.logFile), { recursive: true });
  mkdirSync(dirname(spec.pidFile), { recursive: true });
  const argv = spec.netns ? ['nsenter', `--net=/run/netns/${spec.netns}`, '--', ...spec.argv] : spec.argv;
  const log = openSync(spec.logFile, 'a');
  try {
    const child = spawn(argv[0], argv.slice(1), {
      detached: true,
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', log, log],
    });
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`${spec.name}: cannot start ${argv[0]}: ${err.message}`)));
      child.once('spawn', () => resolve(child.pid!));
    });
    // Listened for at once: an exit while the child is looked for must not be missed.
    let pid = spawned;
    const onExit = spec.onExit;
    if (onExit) child.once('exit', (code, signal) => onExit(code, signal, pid));
    child.unref();
    if (spec.recordChild) pid = await childOf(spawned, spec.name, spec.logFile);
    const st = procStat(pid);
    if (!st) throw new Error(`${spec.name} exited at once; see ${spec.logFile}`);
    writeFileSync(`${spec.pidFile}.tmp`, `${pid} ${st.start}\n`);
    renameSync(`${spec.pidFile}.tmp`, spec.pidFile);
    return pid;
  } finally { closeSync(log); }
}

/** SIGTERM, then SIGKILL after `graceMs` (0: at once); resolves when the process is gone and removes the pid file. */
export async function stopDaemon(pidFile: string, opts: { graceMs?: number } = {}): Promise<void> {
  const pid = livePid(pidFile);
  if (pid !== undefined) {
    const grace = opts.graceMs ?? 3000;
    try { process.kill(pid, grace > 0 ? 'SIGTERM' : 'SIGKILL'); } catch { /* already gone */ }
    const deadline = Date.now() + grace;
    while (isAlive(pidFile) && Date.now() < deadline) await sleep(20);
    if (isAlive(pidFile)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      for (let i = 0; i < 250 && isAlive(pidFile); i++) await sleep(20);
    }
  }
  if (existsSync(pidFile)) rmSync(pidFile, { force: true });
}
