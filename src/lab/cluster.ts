// A whole cluster on one machine: the node network (fabric, segments, router, external host) from
// topology.ts, etcd, the controller and one agent per node, each agent inside its node's namespace.
// Everything it starts is a daemon tracked by pid file under the lab's directory, kept running by the
// lab's supervisor (supervise.ts) as systemd would on a node; `down` removes it all.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLUSTER_CONFIG_KEY, HEARTBEAT_PREFIX, NODE_PREFIX, heartbeatKey, heartbeatNode, objectKey } from '../api/keys.js';
import { DEFAULT_CLUSTER_CONFIG, NAMESPACE_NAME_LABEL, type ClusterConfig, type Namespace, type Node } from '../api/types.js';
import { EtcdStore } from '../store/etcd.js';
import { LAB_SERVICE_CIDR, NODE_CIDR_MASK_IPV6, clusterCIDRsOf, defaultCluster, validateCluster, withNodeIPs, type LabCluster } from './cluster-file.js';
import { podRecords } from './kubelet.js';
import { applyTopology, destroyTopology, planTopology, type TopologyPlan } from './topology.js';
import { isAlive, stopDaemon } from './processes.js';
import { enableAndWait, startSupervisorDaemon } from './supervise.js';
import { disableUnit, type UnitSpec } from './units.js';
import { DEFAULT_LAB_ROOT, flatnetArgv, flatnetCniPath } from './paths.js';
import { makePki } from '../apiserver/pki.js';
import { agentKubeconfigText, controlPlaneEndpoint, installRbac, writeSecretFile } from './control-plane.js';
import { freeLoopbackPort } from '../metrics/serve.js';

export { DEFAULT_LAB_ROOT };

export interface LabInfo {
  name: string;
  dir: string;
  cluster: LabCluster;
  etcdEndpoint: string;
}

export class ClusterLab {
  readonly dir: string;
  constructor(readonly name: string, readonly root = DEFAULT_LAB_ROOT) {
    if (!/^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/.test(name)) {
      throw new Error(`lab name "${name}" is invalid: 1-16 lowercase letters, digits and "-" (it prefixes every namespace name)`);
    }
    this.dir = join(root, name);
  }

  get etcdDir(): string { return join(this.dir, 'etcd'); }
  get etcdEndpoint(): string { return `unix://${join(this.etcdDir, 'client.sock:1')}`; }
  nodeDir(node: string): string { return join(this.dir, 'nodes', node); }
  pidFile(what: string): string { return join(this.dir, 'run', `${what}.pid`); }
  logFile(what: string): string { return join(this.dir, 'log', `${what}.log`); }

  /** The lab API's certificates and port file. */
  get apiServerDir(): string { return join(this.dir, 'apiserver'); }
  get kubeconfigPath(): string { return join(this.dir, 'kubeconfig'); }
  /** Where the controller serves /metrics ("127.0.0.1:PORT"): it runs in the root netns, so up picks a free port. */
  get controllerMetricsFile(): string { return join(this.dir, 'controller-metrics'); }

  /** The kubeconfig's path, once the lab's API server has written it. */
  kubeconfig(): string {
    this.cluster(); // a lab that is not up is said so
    if (!existsSync(this.kubeconfigPath)) throw new Error(`lab "${this.name}" has no kubeconfig yet (${this.kubeconfigPath}): its API server has not started; see ${this.logFile('apiserver')}`);
    return this.kubeconfigPath;
  }

  exists(): boolean { return existsSync(join(this.dir, 'cluster.json')); }

  cluster(): LabCluster {
    if (!this.exists()) throw new Error(`lab "${this.name}" is not up (no ${join(this.dir, 'cluster.json')}); run "flatnet lab up"`);
    return JSON.parse(readFileSync(join(this.dir, 'cluster.json'), 'utf8')) as LabCluster;
  }

  plan(cluster = this.cluster()): TopologyPlan { return planTopology(this.name, cluster); }

  store(): EtcdStore { return new EtcdStore({ endpoints: this.etcdEndpoint }); }

  /** Builds the node network, starts etcd, the controller and the agents; resolves when every node is Ready with a pod CIDR. */
  async up(input: LabCluster = defaultCluster(), opts: { timeoutMs?: number } = {}): Promise<void> {
    const cluster = withNodeIPs(validateCluster(input, 'cluster'));
    if (this.exists()) throw new Error(`lab "${this.name}" is already up; "flatnet lab down" first`);
    if (existsSync(this.dir) && readdirSync(this.dir).length > 0 && !this.isLabDir()) throw new Error(notALab(this.dir));
    mkdirSync(this.dir, { recursive: true });
    // The marker first: whatever else up leaves behind, down can tell this directory is a lab's.
    writeFileSync(join(this.dir, LAB_MARKER), `flatnet lab ${this.name}\n`);
    for (const d of ['run', 'log', 'nodes', 'etcd']) mkdirSync(join(this.dir, d), { recursive: true });
    writeFileSync(join(this.dir, 'cluster.json'), JSON.stringify(cluster, null, 2) + '\n');
    try {
      await applyTopology(this.plan(cluster));
      await startSupervisorDaemon(this);
      await this.startEtcd();
      await this.writeClusterConfig(cluster);
      await this.startApiServer(cluster);
      if (cluster.datastore === 'kubernetes') await this.startControlPlaneApi(cluster);
      const metricsAt = `127.0.0.1:${await freeLoopbackPort()}`;
      writeFileSync(this.controllerMetricsFile, `${metricsAt}\n`);
      await this.runUnit({ name: 'controller', argv: [...flatnetArgv(), 'controller', '--etcd', this.etcdEndpoint, '--identity', `${this.name}-controller`, '--metrics-listen', metricsAt],
        logFile: this.logFile('controller'), pidFile: this.pidFile('controller') });
      for (const n of cluster.nodes) await this.startAgent(n.name);
      await this.waitNodesReady(cluster.nodes.map((n) => n.name), opts.timeoutMs ?? 30_000);
    } catch (err) {
      // Undo everything but the logs the error points at: they say why, and `lab down` removes them.
      await this.down({ keepLogs: true }).catch(() => undefined);
      const logs = join(this.dir, 'log');
      if (err instanceof Error && existsSync(logs)) err.message += ` (lab "${this.name}" was taken down; its logs are kept in ${logs}; "flatnet lab down" removes them)`;
      throw err;
    }
  }

  private async startEtcd(): Promise<void> {
    const client = 'client.sock:1';
    const peer = 'peer.sock:1';
    // etcd's unix socket answers whoever can reach it, with no auth: only root may.
    chmodSync(this.etcdDir, 0o700);
    await this.runUnit({
      name: 'etcd',
      argv: ['etcd', '--name', this.name, '--data-dir', join(this.etcdDir, 'data'),
        '--listen-client-urls', `unix://${client}`, '--advertise-client-urls', `unix://${client}`,
        '--listen-peer-urls', `unix://${peer}`, '--initial-advertise-peer-urls', `unix://${peer}`,
        '--initial-cluster', `${this.name}=unix://${peer}`, '--initial-cluster-state', 'new', '--enable-grpc-gateway=false'],
      // etcd 3.4 takes unix socket URLs as host:port names relative to its working directory.
      cwd: this.etcdDir,
      logFile: this.logFile('etcd'), pidFile: this.pidFile('etcd'),
      // etcd cannot bind over the socket files a killed etcd left: the supervisor removes them when dead.
      staleSockets: [join(this.etcdDir, client), join(this.etcdDir, peer)],
    });
    const store = this.store();
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        try { await store.get('/health'); return; } catch (err) {
          if (!isAlive(this.pidFile('etcd'))) throw new Error(`etcd exited; see ${this.logFile('etcd')}`);
          if (Date.now() > deadline) throw new Error(`etcd did not answer within 15 s: ${(err as Error).message}`);
          await sleep(100);
        }
      }
    } finally { await store.close(); }
  }

  /** The Kubernetes API over the lab's etcd, on 127.0.0.1 (apiserver/server.ts); resolves once its kubeconfig is written. */
  private async startApiServer(cluster: LabCluster): Promise<void> {
    // The serving certificate also names the control-plane endpoint, where a kubernetes-mode lab's agents connect.
    makePki(this.apiServerDir, [controlPlaneEndpoint(cluster).host]);
    await this.runUnit({
      name: 'apiserver',
      argv: [...flatnetArgv(), 'apiserver', '--etcd', this.etcdEndpoint, '--pki-dir', this.apiServerDir, '--kubeconfig', this.kubeconfigPath, '--identity', this.name],
      logFile: this.logFile('apiserver'), pidFile: this.pidFile('apiserver'),
    });
    for (const deadline = Date.now() + 15_000; !existsSync(this.kubeconfigPath); await sleep(50)) {
      if (!isAlive(this.pidFile('apiserver'))) throw new Error(`the API server exited; see ${this.logFile('apiserver')}`);
      if (Date.now() > deadline) throw new Error(`the API server wrote no kubeconfig within 15 s; see ${this.logFile('apiserver')}`);
    }
  }

  /**
   * For agents reading the API (datastore: kubernetes): a second API server in the router's namespace on
   * the control-plane endpoint, the RBAC objects of deploy/flatnet.yaml, the agents' kubeconfig with the
   * flatnet ServiceAccount's token, and net-conf.json as the DaemonSet mounts it from its ConfigMap.
   */
  private async startControlPlaneApi(cluster: LabCluster): Promise<void> {
    const at = controlPlaneEndpoint(cluster);
    await this.runUnit({
      name: 'apiserver-cp',
      argv: [...flatnetArgv(), 'apiserver', '--etcd', this.etcdEndpoint, '--pki-dir', this.apiServerDir, '--listen', `${at.host}:${at.port}`, '--identity', this.name],
      netns: this.plan(cluster).router, logFile: this.logFile('apiserver-cp'), pidFile: this.pidFile('apiserver-cp'),
    });
    const store = this.store();
    try {
      await installRbac(store);
      writeSecretFile(this.agentKubeconfigPath, await agentKubeconfigText(store, this.apiServerDir, this.name, `https://${at.host}:${at.port}`));
    } finally { await store.close(); }
    writeFileSync(this.netConfPath, JSON.stringify(clusterConfigOf(cluster), null, 2) + '\n');
  }

  /** The agents' kubeconfig (a ServiceAccount token) and network config, in a kubernetes-mode lab. */
  get agentKubeconfigPath(): string { return join(this.dir, 'agent-kubeconfig'); }
  get netConfPath(): string { return join(this.dir, 'net-conf.json'); }

  private async writeClusterConfig(cluster: LabCluster): Promise<void> {
    const config = clusterConfigOf(cluster);
    const store = this.store();
    try {
      await store.put(CLUSTER_CONFIG_KEY, JSON.stringify(config));
      for (const ns of ['default', 'kube-system']) {
        const obj: Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString(), labels: { [NAMESPACE_NAME_LABEL]: ns } }, status: { phase: 'Active' } };
        await store.create(objectKey('Namespace', ns), JSON.stringify(obj));
      }
    } finally { await store.close(); }
  }

  /** Starts (or restarts) a node's agent inside the node's namespace. */
  async startAgent(node: string): Promise<void> {
    const dir = this.nodeDir(node);
    for (const d of ['bin', 'net.d', 'ipam', 'cache', 'pods']) mkdirSync(join(dir, d), { recursive: true });
    const cni = join(dir, 'bin', 'flatnet-cni');
    if (!existsSync(cni)) symlinkSync(flatnetCniPath(), cni);
    // Containers find `flatnet` on their PATH, as they would find a binary in their image.
    const shim = join(dir, 'bin', 'flatnet');
    writeFileSync(shim, `#!/bin/sh\nexec ${flatnetArgv().map((a) => `'${a}'`).join(' ')} "$@"\n`);
    chmodSync(shim, 0o755);
    const plan = this.plan();
    const netns = plan.nodes.find((n) => n.name === node)?.netns;
    if (!netns) throw new Error(`node "${node}" is not in lab "${this.name}"`);
    // In a kubernetes-mode lab the agent reads the API as a DaemonSet does; the lab kubelet beside it keeps etcd.
    const datastore = this.cluster().datastore === 'kubernetes'
      ? ['--datastore', 'kubernetes', '--kubeconfig', this.agentKubeconfigPath, '--config', this.netConfPath] : [];
    await this.runUnit({
      name: `agent-${node}`,
      argv: [...flatnetArgv(), 'agent', '--etcd', this.etcdEndpoint, '--node', node, '--node-dir', dir, '--iface', 'eth0',
        '--pod-runtime', 'lab', '--netns-prefix', this.name, '--heartbeat-ttl', '4', ...datastore],
      netns, logFile: this.logFile(`agent-${node}`), pidFile: this.pidFile(`agent-${node}`),
    });
  }

  /** Stops a node's agent and its supervision (`systemctl stop`): it stays stopped until startAgent. */
  async stopAgent(node: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    disableUnit(this.dir, `agent-${node}`);
    await stopDaemon(this.pidFile(`agent-${node}`), { graceMs: signal === 'SIGKILL' ? 0 : 3000 });
  }

  /** Hands a daemon to the supervisor; resolves once it runs. */
  private async runUnit(spec: UnitSpec): Promise<void> {
    await enableAndWait(this.dir, spec, this.pidFile('supervisor'));
  }

  async waitNodesReady(names: string[], timeoutMs: number): Promise<Node[]> {
    const store = this.store();
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const nodes = (await store.list(NODE_PREFIX)).items.map((kv) => JSON.parse(kv.value) as Node);
        const beats = new Set((await store.list(HEARTBEAT_PREFIX)).items.map((kv) => heartbeatNode(kv.key)));
        const ready = names.filter((n) => nodes.find((x) => x.metadata.name === n)?.spec.podCIDR && beats.has(n));
        if (ready.length === names.length) return nodes;
        if (Date.now() > deadline) {
          const missing = names.filter((n) => !ready.includes(n));
          throw new Error(`nodes not ready after ${timeoutMs} ms: ${missing.join(', ')} (see ${join(this.dir, 'log')})`);
        }
        await sleep(100);
      }
    } finally { await store.close(); }
  }

  /** Adds a node to a running lab: its namespace on the segment, then its agent; resolves when it is Ready. */
  async addNode(name: string, segment: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const cluster = this.cluster();
    if (cluster.nodes.some((n) => n.name === name)) throw new Error(`node "${name}" already exists in lab "${this.name}"`);
    const next = withNodeIPs(validateCluster({ ...cluster, nodes: [...cluster.nodes, { name, segment }] }, join(this.dir, 'cluster.json')));
    writeFileSync(join(this.dir, 'cluster.json'), JSON.stringify(next, null, 2) + '\n');
    await applyTopology(this.plan(next));
    await this.startAgent(name);
    await this.waitNodesReady([name], opts.timeoutMs ?? 30_000);
  }

  /** Removes a node as an operator would: stop its agent, remove its pods, delete the Node, remove its namespace. */
  async removeNode(name: string): Promise<void> {
    const cluster = this.cluster();
    const plan = this.plan(cluster);
    const node = plan.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`node "${name}" is not in lab "${this.name}"`);
    await this.stopAgent(name);
    for (const rec of podRecords(this.nodeDir(name))) if (rec.netns) removeNetns(rec.netns);
    const store = this.store();
    try {
      await store.delete(heartbeatKey(name));
      await store.delete(objectKey('Node', name));
    } finally { await store.close(); }
    removeNetns(node.netns);
    writeFileSync(join(this.dir, 'cluster.json'), JSON.stringify({ ...cluster, nodes: cluster.nodes.filter((n) => n.name !== name) }, null, 2) + '\n');
    rmSync(this.nodeDir(name), { recursive: true, force: true });
  }

  /** Whether the directory holds a lab: its marker, or the cluster.json of a lab made before the marker existed. */
  isLabDir(): boolean { return existsSync(join(this.dir, LAB_MARKER)) || existsSync(join(this.dir, 'cluster.json')); }

  /**
   * Stops every process (pods' too), removes every namespace and what the lab made in its directory;
   * refuses a directory that is not a lab's. Returns what it left: files it did not make (the
   * directory stays then), and with keepLogs the log directory. A missing directory is already down.
   */
  async down(opts: { keepLogs?: boolean } = {}): Promise<{ left: string[] }> {
    if (!existsSync(this.dir)) {
      await this.stopEverything(); // pod namespaces named for this lab may outlive its directory
      removeRootIfEmpty(this.root);
      return { left: [] };
    }
    if (!this.isLabDir()) throw new Error(notALab(this.dir));
    await this.stopEverything();
    const keep = new Set(opts.keepLogs ? ['log', LAB_MARKER] : []);
    for (const entry of LAB_ENTRIES) if (!keep.has(entry)) rmSync(join(this.dir, entry), { recursive: true, force: true });
    const left = readdirSync(this.dir);
    if (left.length === 0) { rmdirSync(this.dir); removeRootIfEmpty(this.root); }
    return { left: left.map((e) => join(this.dir, e)) };
  }

  private async stopEverything(): Promise<void> {
    const runDir = join(this.dir, 'run');
    const pidFiles = existsSync(runDir) ? readdirSync(runDir).filter((f) => f.endsWith('.pid')) : [];
    // The supervisor first (it would restart the rest), agents next (they would recreate pods), then
    // their pods' processes, then the controller and etcd.
    const order = (f: string) => (f === 'supervisor.pid' ? -1 : f.startsWith('agent-') ? 0 : f === 'controller.pid' ? 2 : f === 'etcd.pid' ? 3 : 1);
    for (const group of [-1, 0, 1, 2, 3]) {
      await Promise.all(pidFiles.filter((f) => order(f) === group).map((f) => stopDaemon(join(runDir, f), { graceMs: 2000 }).catch(() => undefined)));
    }
    // Pod namespaces: stop what runs in them (containers are ours by construction), then delete them.
    for (const ns of this.podNetnses()) removeNetns(ns);
    if (existsSync(join(this.dir, 'cluster.json'))) {
      const plan = this.plan();
      for (const ns of plan.namespaces) killNetnsProcesses(ns);
      await destroyTopology(plan);
    }
  }

  podNetnses(): string[] {
    const all = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
    return all.filter((n) => n.startsWith(`${this.name}-p-`));
  }
}

/** Marks a directory as a lab's: written first by `up`, so even a half-made lab is recognised by `down`. */
const LAB_MARKER = '.flatnet-lab';
/** Everything a lab makes in its directory; `down` removes these and nothing else. */
const LAB_ENTRIES = ['run', 'units', 'nodes', 'etcd', 'apiserver', 'kubeconfig', 'kubeconfig.tmp', 'agent-kubeconfig', 'agent-kubeconfig.tmp',
  'net-conf.json', 'controller-metrics', 'log', 'cluster.json', LAB_MARKER];

const notALab = (dir: string): string =>
  `${dir} is not a flatnet lab's directory (it has no ${LAB_MARKER} or cluster.json); refusing to touch it: check --state-dir and --lab`;

function removeRootIfEmpty(root: string): void {
  try { rmdirSync(root); } catch { /* other labs, or other files, live there */ }
}

/** Ends what runs in a namespace of this lab, then deletes the namespace; one already gone is fine. */
function removeNetns(netns: string): void {
  killNetnsProcesses(netns);
  try { execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' }); } catch { /* gone */ }
}

/** Processes inside a namespace of this lab are the lab's by construction; end them by pid. */
function killNetnsProcesses(netns: string): void {
  let out = '';
  try { out = execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { return; }
  for (const pid of out.split('\n').filter(Boolean).map(Number)) {
    if (pid !== process.pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

/** The cluster config every agent reads: from the store (etcd mode) or net-conf.json (kubernetes mode). */
function clusterConfigOf(cluster: LabCluster): ClusterConfig {
  return {
    clusterCIDRs: clusterCIDRsOf(cluster),
    nodeCIDRMaskSize: { ipv4: cluster.nodeCIDRMaskSize, ipv6: NODE_CIDR_MASK_IPV6 },
    backend: cluster.backend,
    vxlan: { vni: 1, port: 8472 },
    serviceCIDR: cluster.serviceCIDR ?? LAB_SERVICE_CIDR,
    nodePortRange: DEFAULT_CLUSTER_CONFIG.nodePortRange,
    ...(cluster.maxPods !== undefined ? { maxPods: cluster.maxPods } : {}),
  };
}
