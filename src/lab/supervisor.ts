// The lab kubelet's containers are lab daemons: started in the pod's namespace, tracked by pid file.
import type { Supervisor } from './kubelet.js';
import { isAlive, startDaemon, stopDaemon } from './processes.js';

export function labSupervisor(): Supervisor {
  return {
    async start(spec) {
      return startDaemon({ name: spec.name, argv: spec.argv, netns: spec.netns, env: spec.env, logFile: spec.logFile, pidFile: spec.pidFile, recordChild: spec.recordChild });
    },
    alive: (pidFile) => isAlive(pidFile),
    stop: (pidFile, graceMs) => stopDaemon(pidFile, { graceMs: graceMs ?? 1000 }),
  };
}
