// `flatnet demo`: a 3-node lab across two segments with the auto backend, a few ordinary manifests
// (a Deployment, a two-container pod, a host-network pod, Services in front of them), then
// `flatnet check` proves the model.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterLab } from './cluster.js';
import { defaultCluster } from './cluster-file.js';
import { parseManifests } from '../api/manifest.js';
import { applyObjects, listObjects } from '../api/apply.js';
import { formatTable } from '../api/format.js';
import type { Pod, Service } from '../api/types.js';
import type { Store } from '../store/store.js';
import { gatherInputs } from '../check/inputs.js';
import { formatReport, runCheck } from '../check/run.js';
import { flatnetArgv } from './paths.js';
import { Netns } from '../kernel/netns.js';
import { nftListSet } from '../kernel/nft.js';

export const DEMO_MANIFESTS = `apiVersion: v1
kind: Namespace
metadata: { name: demo }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: demo }
spec:
  replicas: 8
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          command: [flatnet, serve, --port, "8080"]
          ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: duo, namespace: demo, labels: { app: duo } }
spec:
  containers:
    - name: main
      command: [flatnet, serve, --port, "8080"]
      ports: [{ containerPort: 8080 }]
    - name: sidecar
      command: [flatnet, serve, --port, "9090/udp"]
      ports: [{ containerPort: 9090, protocol: UDP }]
---
apiVersion: v1
kind: Pod
metadata: { name: hostnet, namespace: demo }
spec:
  hostNetwork: true
  containers:
    - name: agent
      command: [sleep, infinity]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web-nodeport, namespace: demo }
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }]
---
apiVersion: v1
kind: Service
metadata: { name: not-yet, namespace: demo }
spec:
  selector: { app: not-deployed-yet }
  ports: [{ port: 80 }]
`;

/**
 * Waits until every node's proxy sends `clusterIP:port` to `count` endpoints: the controller has
 * written the EndpointSlice and each agent has synced it (what a check of Services needs first).
 */
export async function waitServiceProgrammed(lab: ClusterLab, clusterIP: string, port: number, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const want = `${clusterIP} . tcp . ${port} : goto pick-${count}`;
  for (;;) {
    const nodes = lab.plan().nodes;
    const listed = await Promise.all(nodes.map((n) => nftListSet(new Netns(`/run/netns/${n.netns}`), 'map', 'ip', 'flatnet-proxy', 'services').catch(() => undefined)));
    const missing = nodes.filter((_, i) => !listed[i]?.includes(want));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`after ${timeoutMs} ms, ${missing.map((n) => n.name).join(', ')} still lack ${want}`);
    await sleep(100);
  }
}

export async function waitPodsRunning(store: Store, count: number, timeoutMs: number): Promise<Pod[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = (await listObjects(store, 'Pod')) as Pod[];
    const running = pods.filter((p) => p.status?.phase === 'Running');
    if (running.length >= count && running.length === pods.length) return pods;
    if (Date.now() > deadline) {
      throw new Error(`pods not running after ${timeoutMs} ms: ${pods.filter((p) => p.status?.phase !== 'Running').map((p) => `${p.metadata.namespace}/${p.metadata.name} (${p.status?.phase ?? 'Pending'}${p.status?.message ? `: ${p.status.message}` : ''})`).join(', ') || `${running.length}/${count}`}`);
    }
    await sleep(100);
  }
}

export async function runClusterDemo(opts: { keep: boolean; root: string; lab?: string; log?: (l: string) => void }): Promise<boolean> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const lab = new ClusterLab(opts.lab ?? `demo-${randomBytes(2).toString('hex')}`, opts.root);
  const cluster = defaultCluster();
  let ok = false;
  const t0 = Date.now();
  try {
    log(`lab ${lab.name}: ${cluster.nodes.length} nodes on ${cluster.segments.length} segments (${cluster.segments.map((s) => `${s.name} ${s.subnet}`).join(', ')}), backend ${cluster.backend}`);
    await lab.up(cluster);
    log(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s: etcd, controller and ${cluster.nodes.length} agents running\n`);
    const store = lab.store();
    try {
      const objects = parseManifests(DEMO_MANIFESTS, 'demo.yaml');
      for (const r of await applyObjects(store, objects)) log(r.line);
      await waitPodsRunning(store, 10, 60_000);
      const web = (await listObjects(store, 'Service', 'demo')).find((o) => o.metadata.name === 'web') as Service;
      await waitServiceProgrammed(lab, web.spec.clusterIP!, 80, 8, 30_000);
      log('\n$ flatnet get nodes -o wide');
      log(formatTable('Node', await listObjects(store, 'Node'), { wide: true, allNamespaces: false }));
      log('\n$ flatnet get pods -A -o wide');
      log(formatTable('Pod', await listObjects(store, 'Pod'), { wide: true, allNamespaces: true }));
      log('\n$ flatnet get services -n demo');
      log(formatTable('Service', await listObjects(store, 'Service', 'demo'), { wide: false, allNamespaces: false }));
      log('\n$ flatnet check');
      const plan = lab.plan();
      const inputs = await gatherInputs(store, { name: lab.name, nodeNetns: (n) => plan.nodes.find((x) => x.name === n)?.netns, external: plan.external });
      const report = await runCheck(inputs, { flatnet: flatnetArgv() });
      log(formatReport(report));
      ok = report.pass;
    } finally { await store.close(); }
  } finally {
    if (opts.keep) log(`\nlab kept: flatnet --lab ${lab.name} get pods -A -o wide; flatnet --lab ${lab.name} check; flatnet --lab ${lab.name} lab down`);
    else { await lab.down(); log(`\nlab ${lab.name} removed`); }
  }
  return ok;
}
