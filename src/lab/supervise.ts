// `flatnet lab supervise`: what systemd and the kubelet are to a real node's daemons. It keeps every
// enabled unit (units.ts) running: a unit that exits is started again after a backoff that doubles
// with each crash in a row (0.5 s, 1 s, 2 s ... up to 30 s, as kubelet's CrashLoopBackOff doubles) and
// resets once the unit has stayed up for 60 s. A held unit is not started until its hold ends.
import { existsSync, lstatSync, mkdirSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { livePid, startDaemon, stopDaemon } from './processes.js';
import { flatnetArgv } from './paths.js';
import {
  enableUnit, heldUntil, listUnits, readSupervisorState, unitEnabled, unitsDir, writeSupervisorState,
  type SupervisorState, type UnitSpec, type UnitState,
} from './units.js';

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
/** Up this long, a unit's crash count starts over (kubelet resets after twice its maximum backoff). */
export const BACKOFF_RESET_MS = 2 * BACKOFF_MAX_MS;

/** Pure: how long to wait before starting a unit that crashed `crashes` times in a row. */
export function backoffMs(crashes: number): number {
  if (crashes <= 0) return 0;
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(crashes - 1, 16));
}

/** "signal SIGKILL", "exit code 1". */
export const describeExit = (code: number | null, signal: string | null): string => (signal ? `signal ${signal}` : `exit code ${code}`);

/**
 * A unix socket file that nothing answers on is left from a process that died (etcd cannot bind over
 * it: "address already in use"); one that answers belongs to a live process and is kept.
 */
export async function clearStaleSocket(path: string): Promise<'absent' | 'in use' | 'removed'> {
  try { if (!lstatSync(path).isSocket()) return 'in use'; } catch { return 'absent'; }
  const answered = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
  if (answered) return 'in use';
  rmSync(path, { force: true });
  return 'removed';
}

export interface SuperviseOptions {
  labDir: string;
  log: (msg: string) => void;
  pollMs?: number;
  /** Resolves when the supervisor should stop (SIGTERM); it leaves the units running. */
  stopRequested: Promise<void>;
}

export async function runSupervisor(o: SuperviseOptions): Promise<void> {
  const state: SupervisorState = readSupervisorState(o.labDir) ?? { updatedAt: new Date().toISOString(), units: {} };
  // Exits of processes this supervisor started, by pid: how they ended, for `lab status`.
  const exits = new Map<number, string>();
  // Children of this process not yet reaped: their exit event says how they ended, and comes soon.
  const children = new Map<number, number | undefined>();
  let stopping = false;
  let wake: () => void = () => undefined;
  void o.stopRequested.then(() => { stopping = true; wake(); });
  let watcher: FSWatcher | undefined;
  // Unit files appear and go under units/: watching it starts a new unit at once rather than at the next poll.
  try {
    if (existsSync(o.labDir)) mkdirSync(unitsDir(o.labDir), { recursive: true });
    watcher = watch(unitsDir(o.labDir), () => wake());
  } catch { /* polling alone */ }

  const startUnit = async (spec: UnitSpec, st: UnitState): Promise<void> => {
    for (const sock of spec.staleSockets ?? []) {
      if ((await clearStaleSocket(sock)) === 'removed') o.log(`${spec.name}: removed stale socket ${sock}`);
    }
    const pid = await startDaemon({ ...spec, onExit: (code, signal, exited) => { exits.set(exited, describeExit(code, signal)); children.delete(exited); wake(); } });
    if (!exits.has(pid)) children.set(pid, undefined);
    // Stopped (unit removed) while it was starting: the caller has already stopped what the pid file named.
    if (!unitEnabled(o.labDir, spec.name)) { await stopDaemon(spec.pidFile, { graceMs: 1000 }); return; }
    if (st.startedAt) st.restarts++;
    st.pid = pid;
    st.startedAt = new Date().toISOString();
    delete st.nextStartAt;
    o.log(`${spec.name}: started, pid ${pid}${st.restarts ? ` (restart ${st.restarts})` : ''}`);
  };

  const tick = async (): Promise<void> => {
    const now = Date.now();
    const units = listUnits(o.labDir);
    for (const name of Object.keys(state.units)) if (!units.some((u) => u.name === name)) delete state.units[name];
    for (const spec of units) {
      const st = (state.units[spec.name] ??= { restarts: 0, crashes: 0 });
      const pid = livePid(spec.pidFile);
      if (pid !== undefined) {
        if (st.pid !== pid) st.pid = pid; // started by someone else (an older lab, by hand): adopted
        if (st.crashes && st.startedAt && now - Date.parse(st.startedAt) >= BACKOFF_RESET_MS) st.crashes = 0;
        continue;
      }
      if (st.pid !== undefined && children.has(st.pid)) {
        // Dead (a zombie) but not reaped yet: wait up to 2 s for its exit status.
        const since = children.get(st.pid) ?? now;
        children.set(st.pid, since);
        if (now - since < 2000) continue;
        children.delete(st.pid);
      }
      if (st.pid !== undefined) {
        st.lastExit = exits.get(st.pid) ?? 'exited';
        st.lastExitAt = new Date(now).toISOString();
        exits.delete(st.pid);
        st.crashes++;
        st.nextStartAt = new Date(now + backoffMs(st.crashes)).toISOString();
        o.log(`${spec.name}: pid ${st.pid} ended (${st.lastExit}); starting again in ${backoffMs(st.crashes)} ms`);
        delete st.pid;
      }
      if (heldUntil(o.labDir, spec.name, now) !== undefined) continue;
      if (st.nextStartAt && Date.parse(st.nextStartAt) > now) continue;
      try { await startUnit(spec, st); } catch (err) {
        st.crashes++;
        st.lastExit = `could not start: ${(err as Error).message}`;
        st.lastExitAt = new Date().toISOString();
        st.nextStartAt = new Date(Date.now() + backoffMs(st.crashes)).toISOString();
        o.log(`${spec.name}: ${st.lastExit}`);
      }
    }
    state.updatedAt = new Date().toISOString();
    writeSupervisorState(o.labDir, state);
  };

  o.log(`supervising ${unitsDir(o.labDir)}`);
  try {
    while (!stopping) {
      // `lab down` removed the lab (it stops the supervisor first; this covers a down that failed midway).
      if (!existsSync(o.labDir)) { o.log(`${o.labDir} is gone`); break; }
      try { await tick(); } catch (err) { o.log(`supervisor: ${(err as Error).message}`); }
      const woken = new Promise<void>((resolve) => { wake = resolve; });
      await Promise.race([sleep(o.pollMs ?? 200), woken]);
    }
  } finally {
    watcher?.close();
    o.log('stopping; the units keep running');
  }
}

/** Starts the lab's supervisor daemon (in the root namespace; it enters node namespaces per unit). */
export async function startSupervisorDaemon(lab: { name: string; root: string; pidFile(w: string): string; logFile(w: string): string }): Promise<void> {
  await startDaemon({
    name: 'supervisor', argv: [...flatnetArgv(), '--lab', lab.name, '--state-dir', lab.root, 'lab', 'supervise'],
    logFile: lab.logFile('supervisor'), pidFile: lab.pidFile('supervisor'),
  });
}

/** Enables a unit and resolves once the supervisor has it running (the pid file names a live process). */
export async function enableAndWait(labDir: string, spec: UnitSpec, supervisorPidFile: string, timeoutMs = 15_000): Promise<number> {
  enableUnit(labDir, spec);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = livePid(spec.pidFile);
    if (pid !== undefined) return pid;
    if (livePid(supervisorPidFile) === undefined) throw new Error(`the lab's supervisor is not running (${supervisorPidFile}); cannot start ${spec.name}`);
    if (Date.now() > deadline) throw new Error(`${spec.name} did not start within ${timeoutMs} ms; see ${spec.logFile}`);
    await sleep(50);
  }
}
