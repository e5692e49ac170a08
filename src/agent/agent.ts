// flatnet agent: one per node, in the node's network namespace (a lab node) or the root one (a host);
// the same code either way. It registers the Node, keeps its heartbeat, waits for the pod CIDR, writes
// the CNI config, and keeps routes, masquerade and the service proxy in step with the cluster through
// one sync loop each.
import { join } from 'node:path';
import { CLUSTER_CONFIG_KEY, ENDPOINTSLICE_PREFIX, NODE_PREFIX, SERVICE_PREFIX, objectKey } from '../api/keys.js';
import { parseClusterConfig, podCIDRsOf, serviceId, type ClusterConfig, type EndpointSlice, type Node, type Service } from '../api/types.js';
import { Netns } from '../kernel/netns.js';
import { Mirror, jsonDecode } from '../store/mirror.js';
import { SyncRunner } from '../store/runner.js';
import type { Store } from '../store/store.js';
import { findUnderlay, type Underlay } from './underlay.js';
import { registerNode, startHeartbeat, type Heartbeat } from './registration.js';
import { BRIDGE, renderConfList, writeConfList } from './cni-config.js';
import { ensureBridge, ensureForwarding, ensureLocalRouteSource } from './bridge.js';
import { nodeViews } from './views.js';
import { podMTU, renderRoutes, applyRoutes } from '../dataplane/routes/index.js';
import { renderMasq, applyMasq } from '../dataplane/masq/index.js';
import { startCniServer } from '../cni/server.js';
import { ProxyState } from '../dataplane/proxy/state.js';
import { ProxyApplier } from '../dataplane/proxy/apply.js';
import { startGuard } from '../dataplane/guard/index.js';

export interface AgentOptions {
  store: Store;
  nodeName: string;
  /** Where the node keeps CNI state: net.d/ (conflist), ipam/ (reservations). */
  confDir: string;
  ipamDir: string;
  /** The node interface, or the node IP to find it by; else the default route's interface. */
  iface?: string;
  nodeIP?: string;
  heartbeatTtlSeconds?: number;
  resyncMs?: number;
  log?: (msg: string) => void;
}

export interface Agent {
  readonly underlay: Underlay;
  readonly podCIDRs: string[];
  readonly config: ClusterConfig;
  /** Resolves when every runner has nothing pending. */
  idle(): Promise<void>;
  /** Completed syncs of the routes loop (tests wait on it). */
  routeSyncs(): number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readClusterConfig(store: Store, log: (m: string) => void): Promise<ClusterConfig> {
  for (let waited = 0; ; waited += 500) {
    const kv = await store.get(CLUSTER_CONFIG_KEY);
    if (kv) return parseClusterConfig(kv.value);
    if (waited % 10_000 === 0) log(`waiting for the cluster config at ${CLUSTER_CONFIG_KEY}`);
    await sleep(500);
  }
}

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const ns = Netns.current();
  const { store, nodeName } = opts;
  const config = await readClusterConfig(store, log);
  const underlay = await findUnderlay(ns, { ifname: opts.iface, nodeIP: opts.nodeIP });
  log(`node ${nodeName}: ${underlay.ifname} ${underlay.cidr}${underlay.cidr6 ? ` ${underlay.cidr6}` : ''} mtu ${underlay.mtu}, backend ${config.backend}`);
  await registerNode(store, nodeName, underlay.nodeIP, underlay.nodeIPv6);
  const heartbeat: Heartbeat = startHeartbeat(store, nodeName, opts.heartbeatTtlSeconds ?? 10, log);

  const nodes = new Mirror<Node>(store, NODE_PREFIX, jsonDecode);
  await nodes.start();

  // The pod CIDR comes from the controller; nothing on this node can be set up before it.
  const selfKey = objectKey('Node', nodeName);
  let podCIDRs = podCIDRsOf(nodes.get(selfKey));
  if (podCIDRs.length === 0) {
    log(`node ${nodeName}: waiting for a pod CIDR`);
    podCIDRs = await new Promise<string[]>((resolve) => {
      nodes.onChange(() => { const c = podCIDRsOf(nodes.get(selfKey)); if (c.length) resolve(c); });
    });
  }
  log(`node ${nodeName}: pod CIDR ${podCIDRs.join(', ')}`);
  const mtu = podMTU(underlay.mtu, config.backend);
  // Pods send only from their own address, and only nodes send VXLAN: started here, awaited before the
  // agent returns, so it is in place before any pod starts. Pod packets arrive on host veths (fn<hash>,
  // cni/plan.ts) or the bridge.
  const guard = startGuard(ns, { podInterfaces: ['fn*', BRIDGE], vxlanPort: config.vxlan.port }, () => nodes.values(), { log, resyncMs: opts.resyncMs ?? 30_000 });
  nodes.onChange(() => guard.poke());

  // Bridge, forwarding and CNI config: the node is ready for pods once these exist.
  ensureForwarding(podCIDRs.some((c) => c.includes(':')));
  // Routed pod interfaces spare every packet a bridge hop (and bridge netfilter); they are IPv4 only.
  const podMode = podCIDRs.every((c) => !c.includes(':')) ? 'routed' : 'bridge';
  if (podMode === 'bridge') await ensureBridge(ns, BRIDGE, podCIDRs, mtu);
  if (writeConfList(join(opts.confDir, '10-flatnet.conflist'), renderConfList({ podCIDRs, mtu, dataDir: opts.ipamDir, mode: podMode }))) {
    log(`node ${nodeName}: wrote ${join(opts.confDir, '10-flatnet.conflist')} (mtu ${mtu})`);
  }
  // Warm CNI answers for this netns; without the server the flatnet-cni shim runs a Node process per call.
  const cniServer = await startCniServer({ log }).catch((err: unknown) => {
    log(`cni server: not started (${(err as Error).message}); flatnet-cni runs a process per call`);
  });

  const onError = (what: string) => (err: unknown) => log(`${what} sync failed: ${(err as Error).message}`);
  const routes = new SyncRunner(async () => {
    // Every peer with a Node object is routed; its heartbeat is the controller's business (Ready).
    const views = nodeViews(nodes.values());
    const self = views.find((v) => v.name === nodeName);
    const desired = renderRoutes({
      self: { name: nodeName, nodeIP: underlay.nodeIP, nodeIPv6: underlay.nodeIPv6, podCIDRs, ready: true,
        underlay: { ifname: underlay.ifname, cidr: underlay.cidr, cidr6: underlay.cidr6, mtu: underlay.mtu } },
      peers: views.filter((v) => v !== self),
      backend: config.backend,
      vxlan: config.vxlan,
    });
    for (const u of desired.unreachable) log(`route to ${u.peer}: ${u.reason}`);
    const report = await applyRoutes(ns, desired);
    if (podMode === 'bridge') {
      const local = await ensureLocalRouteSource(ns, BRIDGE, podCIDRs, underlay.nodeIP, underlay.nodeIPv6);
      if (local.length) log(`routes: ${local.join('; ')}`);
    }
    if (report.writes > 0) log(`routes: ${report.summary}`);
    // Said once per start, so a restart that found every route in place shows it wrote nothing.
    else if (routes.syncs === 0) log(`routes: ${desired.routes.length} in place, nothing written`);
  }, { periodMs: opts.resyncMs ?? 30_000, onError: onError('routes') });
  const masq = new SyncRunner(async () => {
    const r = await applyMasq(ns, renderMasq({ podCIDRs, clusterCIDRs: config.clusterCIDRs }));
    if (r.changed) log('masquerade: table flatnet-masq written');
  }, { periodMs: opts.resyncMs ?? 30_000, onError: onError('masquerade') });
  // The service proxy: Services and EndpointSlices in, element diffs of one nft table out.
  // Each change re-renders only its Service (ProxyState); the applier compares only what that touched.
  const proxyState = new ProxyState({ nodeName, nodeIPs: [underlay.nodeIP] });
  const services = new Mirror<Service>(store, SERVICE_PREFIX, jsonDecode).onChange((changes) => {
    for (const c of changes) {
      const svc = (c.after ?? c.before)!;
      proxyState.setService(serviceId(svc.metadata.namespace, svc.metadata.name), c.after);
    }
  });
  const slices = new Mirror<EndpointSlice>(store, ENDPOINTSLICE_PREFIX, jsonDecode).onChange((changes) => {
    for (const c of changes) {
      const slice = (c.after ?? c.before)!;
      proxyState.setSlice(serviceId(slice.metadata.namespace, slice.metadata.name), c.after);
    }
  });
  await Promise.all([services.start(), slices.start()]);
  const clusterCIDR = config.clusterCIDRs.find((c) => !c.includes(':')) ?? config.clusterCIDRs[0];
  const proxyApplier = new ProxyApplier(ns, { clusterCIDR, serviceCIDR: config.serviceCIDR });
  const resyncMs = opts.resyncMs ?? 30_000;
  let lastFullSync = Date.now();
  const proxy = new SyncRunner(async () => {
    // The periodic full sync renders every Service again and reads the table back, undoing any
    // change made behind our back.
    if (Date.now() - lastFullSync >= resyncMs) { proxyApplier.forget(); proxyState.invalidate(); lastFullSync = Date.now(); }
    const r = await proxyApplier.sync(proxyState.plan, proxyState.take());
    if (r.rebuilt || r.operations > 0) log(`proxy: ${r.rebuilt ? `table flatnet-proxy written, ${r.operations} elements` : `${r.operations} element changes`}${r.flushed ? `, ${r.flushed} UDP flows flushed` : ''}`);
    // Said once per start, as for routes: a restart that adopted the table shows it wrote nothing.
    else if (proxy.syncs === 0) log('proxy: table flatnet-proxy adopted as it is, nothing written');
  }, { periodMs: resyncMs, onError: onError('proxy') });

  nodes.onChange(() => routes.poke());
  services.onChange(() => proxy.poke());
  slices.onChange(() => proxy.poke());
  routes.start();
  masq.start();
  proxy.start();
  await guard.idle();

  return {
    underlay, podCIDRs, config,
    routeSyncs: () => routes.syncs,
    async idle() { await Promise.all([routes.idle(), masq.idle(), proxy.idle(), guard.idle()]); },
    async stop() {
      routes.stop();
      masq.stop();
      proxy.stop();
      guard.stop();
      await cniServer?.close();
      await heartbeat.stop();
      await Promise.all([nodes.stop(), services.stop(), slices.stop()]);
    },
  };
}
