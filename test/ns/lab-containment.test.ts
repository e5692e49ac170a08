// A contained container without a lab: started as the kubelet starts it, its pid file names the
// container's init (not unshare, which ignores SIGTERM), exec joins it as its user, and stopping it
// delivers SIGTERM to the command, which can shut down cleanly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { containedArgv, execArgv, INIT_SCRIPT, planContainment } from '../../src/lab/containment.js';
import { isAlive, livePid, startDaemon, stopDaemon } from '../../src/lab/processes.js';
import type { PodSpec } from '../../src/api/types.js';

const scope = new TestScope('ctr');
after(() => scope.cleanupSync());

test('a contained container: its init is the recorded pid, exec joins it, and SIGTERM reaches its command', async () => {
  const netns = scope.netns('c');
  const spec: PodSpec = { containers: [{ name: 'c', securityContext: { runAsUser: 4242 } }] };
  const plan = planContainment({ spec, container: spec.containers[0], podName: 'box', hiddenDirs: [scope.dir], keepDirs: [] });
  const pidFile = join(scope.dir, 'c.pid');
  const logFile = join(scope.dir, 'c.log');
  scope.onCleanup(() => { const pid = livePid(pidFile); if (pid) process.kill(pid, 'SIGKILL'); });
  const argv = containedArgv(plan, ['sh', '-c', 'trap "echo terminated cleanly; exit 0" TERM; echo started; while :; do sleep 0.05; done']);
  const pid = await startDaemon({ name: 'box', argv, netns, logFile, pidFile, recordChild: true });
  assert.equal(livePid(pidFile), pid);
  await until('the container to start', () => readFileSync(logFile, 'utf8').includes('started'));
  assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[2], INIT_SCRIPT);

  const [cmd, ...args] = execArgv(pid, plan.identity, ['sh', '-c', `id -u; hostname; head -c 7 /proc/1/cmdline; echo; ls -A /tmp | wc -l; test -e ${scope.dir} || echo hidden`]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' }).split('\n');
  assert.equal(out[0], '4242');
  assert.equal(out[1], 'box');
  assert.equal(out[2], '/bin/sh', 'pid 1 in the container is its init');
  assert.deepEqual(out.slice(3, 5), ['0', 'hidden'], 'the container has its own empty /tmp, without the host\'s');

  await stopDaemon(pidFile, { graceMs: 20_000 });
  assert.ok(!isAlive(pidFile));
  assert.match(readFileSync(logFile, 'utf8'), /terminated cleanly/);
});
