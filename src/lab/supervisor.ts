// The lab kubelet's containers are lab daemons: started in the pod's namespace, tracked by pid file.
import { readFileSync } from 'node:fs';
import type { Supervisor } from './kubelet.js';
import { INIT_SCRIPT } from './containment.js';
import { isAlive, startDaemon, stopDaemon } from './processes.js';

export function labSupervisor(): Supervisor {
  return {
    async start(spec) {
      const pid = await startDaemon({ name: spec.name, argv: spec.argv, netns: spec.netns, env: spec.env, logFile: spec.logFile, pidFile: spec.pidFile, recordChild: spec.recordChild });
      if (spec.recordChild) await untilContained(pid, spec.logFile);
      return pid;
    },
    alive: (pidFile) => isAlive(pidFile),
    stop: (pidFile, graceMs) => stopDaemon(pidFile, { graceMs: graceMs ?? 1000 }),
  };
}

/**
 * Waits for a container's init to finish its mounts and become the container (its command line is then
 * the init script's): before that its mount namespace is still the host's, and `flatnet exec` must not join it.
 */
async function untilContained(pid: number, logFile: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    let argv: string[];
    try { argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch {
      throw new Error(`the container exited before it was contained; see ${logFile}`);
    }
    if (argv[2] === INIT_SCRIPT) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the container was not contained within 30 s; see ${logFile}`);
}
