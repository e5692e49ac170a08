// flatnet's Prometheus metrics: one registry per process (an agent or a controller is one process), its
// metrics defined here so every name and label is in one file. Callers record through the small
// functions below; nothing else imports prom-client, so a scrape is always this registry's text.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds: a sync that applies nothing takes ~10 ms, one that rewrites a big proxy table seconds. */
const SYNC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds: a warm ADD takes ~25 ms, a DEL less. */
const CNI_BUCKETS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export const registry = new Registry();
// Node's own (heap, event loop lag, CPU): why an agent is slow is often the process, not the network.
collectDefaultMetrics({ register: registry, prefix: 'flatnet_' });

const featureSyncSeconds = new Histogram({
  name: 'flatnet_feature_sync_duration_seconds', help: 'How long one sync of an agent feature took, failed or not.',
  labelNames: ['feature'] as const, buckets: SYNC_BUCKETS, registers: [registry],
});
const featureSyncs = new Counter({
  name: 'flatnet_feature_syncs_total', help: 'Syncs of an agent feature by result (ok, error).',
  labelNames: ['feature', 'result'] as const, registers: [registry],
});
const cniSeconds = new Histogram({
  name: 'flatnet_cni_request_duration_seconds', help: 'CNI requests answered by the agent\'s warm server, by command.',
  labelNames: ['command'] as const, buckets: CNI_BUCKETS, registers: [registry],
});
const cniRequests = new Counter({
  name: 'flatnet_cni_requests_total', help: 'CNI requests by command and CNI error code (0: success).',
  labelNames: ['command', 'code'] as const, registers: [registry],
});
const watchLag = new Gauge({
  name: 'flatnet_store_watch_lag_revisions', help: 'The store\'s revision when a watch batch arrived minus the batch\'s last revision.',
  labelNames: ['prefix'] as const, registers: [registry],
});
const watchEvents = new Counter({
  name: 'flatnet_store_watch_events_total', help: 'Store events delivered to an etcd watch (by key prefix) or a Kubernetes informer (by resource path).',
  labelNames: ['prefix'] as const, registers: [registry],
});

const controllerStepSeconds = new Histogram({
  name: 'flatnet_controller_step_duration_seconds', help: 'How long one step of the controller\'s sync took (node IPAM, scheduler, endpointslices...).',
  labelNames: ['step'] as const, buckets: SYNC_BUCKETS, registers: [registry],
});
const controllerSteps = new Counter({
  name: 'flatnet_controller_steps_total', help: 'Steps of the controller\'s sync by result (ok, error).',
  labelNames: ['step', 'result'] as const, registers: [registry],
});
const controllerLeader = new Gauge({
  name: 'flatnet_controller_leader', help: '1 while this controller leads (its loops run), 0 while it stands by.', registers: [registry],
});

const policyDrops = new Counter({
  name: 'flatnet_policy_drops_logged_total',
  help: 'Policy drops the agent read from the kernel\'s drop log, by direction and isolating policy. The log is rate-limited (10/s per chain, 50/s per node), so a flood counts only what was logged.',
  labelNames: ['direction', 'policy'] as const, registers: [registry],
});

/** Counts one logged drop once for each policy isolating the pod ("none" for a non-SYN packet no connection owns). */
export function observePolicyDrop(direction: string | undefined, policies: string[]): void {
  for (const policy of policies.length ? policies : ['none']) policyDrops.inc({ direction: direction ?? 'none', policy });
}

/** Runs `fn` and hands its duration in seconds and whether it succeeded to `record`; its error goes on to the caller. */
export async function timed(fn: () => Promise<void>, record: (seconds: number, ok: boolean) => void): Promise<void> {
  const started = performance.now();
  let ok = false;
  try {
    await fn();
    ok = true;
  } finally {
    record((performance.now() - started) / 1000, ok);
  }
}

/** Runs one controller step, recording its duration and result; its error goes on to the caller. */
export function timedControllerStep(step: string, fn: () => Promise<void>): Promise<void> {
  return timed(fn, (seconds, ok) => {
    controllerStepSeconds.observe({ step }, seconds);
    controllerSteps.inc({ step, result: ok ? 'ok' : 'error' });
  });
}

export function setControllerLeader(leading: boolean): void { controllerLeader.set(leading ? 1 : 0); }

/** Records one feature sync. */
export function observeFeatureSync(feature: string, seconds: number, ok: boolean): void {
  featureSyncSeconds.observe({ feature }, seconds);
  featureSyncs.inc({ feature, result: ok ? 'ok' : 'error' });
}

/** Records one CNI request; `code` is the CNI error code, 0 when it succeeded. */
export function observeCniRequest(command: string, seconds: number, code: number): void {
  // Only the commands of the spec: a garbled CNI_COMMAND must not grow the label set.
  const cmd = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'].includes(command) ? command : 'other';
  cniSeconds.observe({ command: cmd }, seconds);
  cniRequests.inc({ command: cmd, code: String(code) });
}

/** Records a watch batch: how many events, and how far behind the store's revision its last one was. */
export function observeWatchBatch(prefix: string, events: number, storeRevision: number, lastRevision: number): void {
  watchEvents.inc({ prefix }, events);
  if (storeRevision > 0) watchLag.set({ prefix }, Math.max(0, storeRevision - lastRevision));
}

/** The text a scrape answers, and its content type. */
export async function scrape(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
