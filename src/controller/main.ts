// `flatnet controller`: the cluster's control loops as a daemon. Any number may run; one leads (the
// others stand by with warm mirrors). Runs until SIGTERM or SIGINT, then hands leadership over at once.
import { hostname } from 'node:os';
import { EtcdStore } from '../store/etcd.js';
import { startController } from './controller.js';

export interface ControllerCommandOptions {
  etcd: string;
  identity?: string;
  leaseTtlSeconds?: number;
  nodeMonitorGraceMs?: number;
}

export async function runControllerCommand(o: ControllerCommandOptions): Promise<void> {
  const identity = o.identity ?? `${hostname()}-${process.pid}`;
  const log = (m: string) => console.log(`${new Date().toISOString()} controller[${identity}] ${m}`);
  if (o.leaseTtlSeconds !== undefined && !(Number.isInteger(o.leaseTtlSeconds) && o.leaseTtlSeconds >= 1)) {
    throw new Error(`--lease-ttl ${o.leaseTtlSeconds}: expected a whole number of seconds >= 1`);
  }
  const store = new EtcdStore({ endpoints: o.etcd });
  // Listen before starting: a signal during startup must still stop cleanly.
  const stopRequested = new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  try {
    const controller = await startController({ store, identity, leaseTtlSeconds: o.leaseTtlSeconds, nodeMonitorGraceMs: o.nodeMonitorGraceMs, log });
    log(controller.isLeader() ? 'started' : 'started; standing by for leadership');
    await stopRequested;
    log('stopping');
    await controller.stop();
  } finally {
    await store.close();
  }
}
