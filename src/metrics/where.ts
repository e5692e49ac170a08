// Where a lab's metrics answer, as `flatnet lab status` prints it: the controller's port recorded by
// lab up (it runs in the root netns), and the agents' health port, the same in every node netns.
import { readFileSync } from 'node:fs';
import { DEFAULT_HEALTH_LISTEN } from '../agent/main.js';

export function labMetricsLine(controllerMetricsFile: string): string {
  let at = 'not recorded';
  try { at = `http://${readFileSync(controllerMetricsFile, 'utf8').trim()}/metrics`; } catch { /* a lab from before metrics */ }
  return `metrics: controller ${at}; each agent http://${DEFAULT_HEALTH_LISTEN}/metrics in its node's netns (ip netns exec NETNS curl ...)`;
}
