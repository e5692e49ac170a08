// The lab's kubelet: what containerd and the kubelet do for a real node, for the pods bound to this lab
// node. A pod is a network namespace wired by the node's CNI config (the same runtime code as
// `flatnet lab pod add`), and each container is a process inside it. What it made is recorded per pod on
// disk, so a restarted agent adopts running pods instead of recreating them.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { POD_PREFIX } from '../api/keys.js';
import type { Container, Pod, PodStatus } from '../api/types.js';
import { graceLeftMs, isTerminating } from '../api/termination.js';
import { Mirror, jsonDecode } from '../store/mirror.js';
import { SyncRunner } from '../store/runner.js';
import type { Store } from '../store/store.js';
import { CniRuntime } from '../runtime/runtime.js';
import { loadConfList } from '../runtime/conflist.js';
import { podNetnsName } from './pods.js';
import { admissionProblem, type Rejection } from './admission.js';
import { capsOfMask, containedArgv, planContainment, type Identity } from './containment.js';
import { CNI_STATE_ROOT, flatnetArgv } from './paths.js';

/** The capabilities this host has at all (the agent's bounding set): what a privileged container gets. */
const hostCaps = (): string[] => capsOfMask(/^CapBnd:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0');
import { livePid } from './processes.js';
import { READINESS_PERIOD_MS, portsInUse, readinessOf, readyCondition, type Readiness } from './readiness.js';

const run = promisify(execFile);

/** How containers are started and stopped: processes by pid (src/lab/processes.ts in the lab). */
export interface Supervisor {
  /** `recordChild`: the process to watch and signal is the program's first child (the container's init); resolves once it is contained. */
  start(spec: { name: string; argv: string[]; netns?: string; env: Record<string, string>; logFile: string; pidFile: string; recordChild?: boolean }): Promise<number>;
  alive(pidFile: string): boolean;
  /** SIGTERM, then SIGKILL after `graceMs` (the supervisor's default when absent; 0: SIGKILL at once). */
  stop(pidFile: string, graceMs?: number): Promise<void>;
}

export interface KubeletOptions {
  store: Store;
  nodeName: string;
  nodeIP: string;
  /** Pod namespaces are named `${netnsPrefix}-p-<uid>`: the lab name keeps labs apart. */
  netnsPrefix: string;
  /** Per-node directory: pods/ (records and logs), cache/ (CNI results). */
  nodeDir: string;
  confFile: string;
  cniBinDirs: string[];
  /** Directory put first on containers' PATH (holds the `flatnet` command). */
  binDir: string;
  supervisor: Supervisor;
  log: (msg: string) => void;
  resyncMs?: number;
  /** Pods this node runs at most (the kubelet's maxPods); more are rejected (admission.ts). */
  maxPods?: number;
}

/** What the kubelet made for one pod: enough to tear it down after a restart with the store gone. */
export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  hostNetwork: boolean;
  netns?: string;
  ips: string[];
  /** `identity`: who the container runs as, for `flatnet exec` to run as the same. */
  containers: Array<{ name: string; pidFile: string; logFile: string; identity?: Identity }>;
}

/** The pods a node's kubelet made, from its records (also readable with the agent stopped). */
export function podRecords(nodeDir: string): PodRecord[] {
  const dir = join(nodeDir, 'pods');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as PodRecord);
}

const podKey = (p: { namespace: string; name: string }) => `${POD_PREFIX}${p.namespace}/${p.name}`;

/** Lab convention: a container without a command runs the built-in workload on its ports (like agnhost netexec). */
export function containerArgv(c: Container): string[] {
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  if (argv.length) return argv;
  const ports = (c.ports ?? []).flatMap((p) => ['--port', `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`]);
  return ports.length ? ['flatnet', 'serve', ...ports] : ['sleep', 'infinity'];
}

/**
 * What a container must not see: the node's CNI sockets and state, and the lab's directory (etcd, every
 * node's files). What it must still run from: the node's bin dir and flatnet's own executables, which
 * may sit under a directory every container gets empty (a checkout under /tmp).
 */
export function containerDirs(nodeDir: string, binDir: string, flatnetBinDir: string): { hiddenDirs: string[]; keepDirs: string[] } {
  return { hiddenDirs: [CNI_STATE_ROOT, resolve(nodeDir, '..', '..')], keepDirs: [binDir, flatnetBinDir] };
}

export class Kubelet {
  private readonly pods: Mirror<Pod>;
  private readonly runner: SyncRunner;
  private readonly cni: CniRuntime;
  private readonly recordsDir: string;
  /** Pods being stopped (uid → the work): a grace period runs beside the sync loop, not inside it. */
  private readonly terminating = new Map<string, Promise<void>>();
  private readinessTimer?: NodeJS.Timeout;

  constructor(private readonly o: KubeletOptions) {
    this.pods = new Mirror<Pod>(o.store, POD_PREFIX, jsonDecode);
    this.recordsDir = join(o.nodeDir, 'pods');
    this.cni = new CniRuntime({ pluginDirs: o.cniBinDirs, cacheDir: join(o.nodeDir, 'cache') });
    this.runner = new SyncRunner(() => this.sync(), {
      minIntervalMs: 50, periodMs: o.resyncMs ?? 10_000, onError: (e) => o.log(`kubelet sync failed: ${(e as Error).message}`),
    });
  }

  async start(): Promise<void> {
    mkdirSync(this.recordsDir, { recursive: true });
    this.pods.onChange(() => this.runner.poke());
    await this.pods.start();
    this.runner.start();
    this.readinessTimer = setInterval(() => this.watchReadiness(), READINESS_PERIOD_MS);
  }

  idle(): Promise<void> { return this.runner.idle(); }

  async stop(): Promise<void> {
    // Terminations under way are not awaited: a restarted kubelet finds the pods still marked and resumes.
    clearInterval(this.readinessTimer);
    this.runner.stop();
    await this.pods.stop();
  }

  private records(): PodRecord[] { return podRecords(this.o.nodeDir); }

  private saveRecord(r: PodRecord): void {
    const file = join(this.recordsDir, `${r.uid}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(r, null, 2) + '\n');
    renameSync(`${file}.tmp`, file);
  }

  private async sync(): Promise<void> {
    const mine = new Map<string, Pod>();
    for (const p of this.pods.values()) if (p.spec.nodeName === this.o.nodeName && p.metadata.uid) mine.set(p.metadata.uid, p);
    const records = new Map(this.records().map((r) => [r.uid, r]));
    const work: Array<Promise<void>> = [];
    for (const [uid, rec] of records) if (!mine.has(uid) && !this.terminating.has(uid)) work.push(this.teardown(rec));
    // New pods are admitted oldest first, while the node has room, as the kubelet's admission does.
    let running = [...records.keys()].filter((uid) => mine.has(uid)).length;
    const byAge = [...mine.values()].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
    for (const pod of byAge) {
      const rec = records.get(pod.metadata.uid!);
      if (isTerminating(pod)) { this.terminate(pod, rec); continue; }
      if (rec) { work.push(this.keep(pod, rec)); continue; }
      if (pod.status?.phase === 'Failed') continue; // rejected before: it stays rejected
      const rejected = admissionProblem(pod, running, this.o.maxPods);
      if (rejected) { work.push(this.reject(pod, rejected)); continue; }
      running++;
      work.push(this.create(pod));
    }
    const failures = (await Promise.allSettled(work)).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length) throw new Error(failures.map((f) => (f.reason as Error).message).join('; '));
  }

  private async create(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid!;
    const ns = pod.metadata.namespace ?? 'default';
    const rec: PodRecord = { uid, namespace: ns, name: pod.metadata.name, hostNetwork: !!pod.spec.hostNetwork, ips: [], containers: [] };
    const id = `${ns}/${pod.metadata.name}`;
    try {
      if (!rec.hostNetwork) {
        rec.netns = podNetnsName(this.o.netnsPrefix, uid);
        this.saveRecord(rec); // recorded before it exists: a crash mid-create is torn down, not leaked
        await run('ip', ['netns', 'add', rec.netns]);
        await run('ip', ['-n', rec.netns, 'link', 'set', 'lo', 'up']);
        // As containerd 2's CRI does by default: a non-root container may listen below 1024 and ping,
        // both only inside its own network namespace.
        await run('nsenter', [`--net=/run/netns/${rec.netns}`, 'sysctl', '-q', '-w', 'net.ipv4.ip_unprivileged_port_start=0', 'net.ipv4.ping_group_range=0 2147483647']);
        const result = await this.cni.addNetworkList(loadConfList(this.o.confFile), this.cniConf(rec));
        rec.ips = (result.ips ?? []).map((x) => x.address.split('/')[0]);
      } else {
        rec.ips = [this.o.nodeIP];
      }
      this.saveRecord(rec);
      for (const c of pod.spec.containers) rec.containers.push(await this.startContainer(pod, rec, c));
      this.saveRecord(rec);
      this.o.log(`pod ${id}: running, IP ${rec.ips.join(', ')}${rec.hostNetwork ? ' (host network)' : ''}`);
      await this.writeStatus(pod, this.statusOf(rec, this.readiness(pod, rec)));
    } catch (err) {
      this.o.log(`pod ${id}: create failed: ${(err as Error).message}`);
      await this.teardown(rec).catch(() => undefined);
      await this.writeStatus(pod, { phase: 'Pending', message: (err as Error).message, conditions: [{ type: 'Ready', status: 'False' }] }).catch(() => undefined);
      throw err;
    }
  }

  private async reject(pod: Pod, why: Rejection): Promise<void> {
    this.o.log(`pod ${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}: rejected: ${why.message}`);
    await this.writeStatus(pod, { phase: 'Failed', reason: why.reason, message: why.message });
  }

  private cniConf(rec: PodRecord) {
    return {
      containerId: rec.uid, netns: `/run/netns/${rec.netns}`, ifname: 'eth0',
      args: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', rec.namespace], ['K8S_POD_NAME', rec.name], ['K8S_POD_INFRA_CONTAINER_ID', rec.uid]] as [string, string][],
    };
  }

  private async startContainer(pod: Pod, rec: PodRecord, c: Container) {
    const base = join(this.recordsDir, `${rec.uid}-${c.name}`);
    const plan = planContainment({
      spec: pod.spec, container: c, podName: rec.name, hostCaps: hostCaps(),
      ...containerDirs(this.o.nodeDir, this.o.binDir, dirname(flatnetArgv()[1])),
    });
    const entry = { name: c.name, pidFile: `${base}.pid`, logFile: `${base}.log`, identity: plan.identity };
    await this.o.supervisor.start({
      name: `${rec.namespace}/${rec.name}/${c.name}`,
      argv: containedArgv(plan, containerArgv(c)),
      netns: rec.netns,
      recordChild: true,
      env: {
        PATH: `${this.o.binDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
        POD_NAME: rec.name, POD_NAMESPACE: rec.namespace, POD_IP: rec.ips[0] ?? '', NODE_NAME: this.o.nodeName, HOSTNAME: rec.name,
      },
      logFile: entry.logFile,
      pidFile: entry.pidFile,
    });
    return entry;
  }

  /** A known pod: restart containers that exited (restartPolicy Always) and keep its status right. */
  private async keep(pod: Pod, rec: PodRecord): Promise<void> {
    for (const c of pod.spec.containers) {
      const entry = rec.containers.find((x) => x.name === c.name);
      if (entry && this.o.supervisor.alive(entry.pidFile)) continue;
      this.o.log(`pod ${rec.namespace}/${rec.name}: container ${c.name} is not running; starting it`);
      const fresh = await this.startContainer(pod, rec, c);
      rec.containers = [...rec.containers.filter((x) => x.name !== c.name), fresh];
      this.saveRecord(rec);
    }
    const want = this.statusOf(rec, this.readiness(pod, rec));
    if (!sameStatus(pod.status, want)) await this.writeStatus(pod, want);
  }

  /**
   * A pod deleted gracefully: its containers get SIGTERM and what is left of the grace period to exit,
   * then its network goes and the kubelet removes the object, which ends the deletion.
   */
  private terminate(pod: Pod, rec: PodRecord | undefined): void {
    const uid = pod.metadata.uid!;
    if (this.terminating.has(uid)) return;
    const id = `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
    const work = (async () => {
      if (rec) {
        this.o.log(`pod ${id}: terminating, ${Math.ceil(graceLeftMs(pod, Date.now()) / 1000)} s grace`);
        await this.teardown(rec, graceLeftMs(pod, Date.now()));
      }
      await this.removeObject(pod);
    })().then(() => {
      this.terminating.delete(uid);
      this.runner.poke();
    }, (err: unknown) => {
      this.o.log(`pod ${id}: termination failed: ${(err as Error).message}; trying again`);
      this.terminating.delete(uid);
      setTimeout(() => this.runner.poke(), 1000).unref();
    });
    this.terminating.set(uid, work);
  }

  /** Deletes the pod object if it is still this pod (same uid), whatever else changed in it meanwhile. */
  private async removeObject(pod: Pod): Promise<void> {
    const key = podKey({ namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name });
    for (let i = 0; i < 10; i++) {
      const kv = await this.o.store.get(key);
      if (!kv || (JSON.parse(kv.value) as Pod).metadata.uid !== pod.metadata.uid) return;
      if (await this.o.store.deleteIf(key, kv.modRevision)) return;
    }
    throw new Error('the pod kept changing; it is removed on a later sync');
  }

  private async teardown(rec: PodRecord, graceMs?: number): Promise<void> {
    // All containers at once, as a kubelet signals them: the grace period is the pod's, not each one's.
    await Promise.all(rec.containers.map((c) => this.o.supervisor.stop(c.pidFile, graceMs).catch(() => undefined)));
    if (rec.netns) {
      // DEL even when the namespace is already gone: the plugin still frees the address.
      await this.cni.delNetworkList(loadConfList(this.o.confFile), this.cniConf(rec)).catch((e) => this.o.log(`pod ${rec.namespace}/${rec.name}: CNI DEL: ${(e as Error).message}`));
      if (existsSync(`/run/netns/${rec.netns}`)) await run('ip', ['netns', 'del', rec.netns]).catch(() => undefined);
    }
    for (const c of rec.containers) { rmSync(c.pidFile, { force: true }); rmSync(c.logFile, { force: true }); }
    rmSync(join(this.recordsDir, `${rec.uid}.json`), { force: true });
    this.o.log(`pod ${rec.namespace}/${rec.name}: removed`);
  }

  /** Ready as a readiness probe on the pod's declared ports would say (readiness.ts). */
  private readiness(pod: Pod, rec: PodRecord): Readiness {
    const pids = new Map(rec.containers.flatMap((c) => { const pid = livePid(c.pidFile); return pid ? [[c.name, pid] as const] : []; }));
    return readinessOf(pod.spec.containers, pids, portsInUse);
  }

  /** Syncs when a running pod's readiness no longer matches its status: a server came up, or died. */
  private watchReadiness(): void {
    const records = new Map(this.records().map((r) => [r.uid, r]));
    for (const pod of this.pods.values()) {
      const rec = records.get(pod.metadata.uid ?? '');
      if (!rec || pod.spec.nodeName !== this.o.nodeName || isTerminating(pod) || pod.status?.phase !== 'Running') continue;
      if (!sameStatus(pod.status, this.statusOf(rec, this.readiness(pod, rec)))) { this.runner.poke(); return; }
    }
  }

  private statusOf(rec: PodRecord, readiness: Readiness): PodStatus {
    return {
      phase: 'Running',
      podIP: rec.ips[0],
      podIPs: rec.ips.map((ip) => ({ ip })),
      hostIP: this.o.nodeIP,
      hostIPs: [{ ip: this.o.nodeIP }],
      conditions: [readyCondition(readiness)],
    };
  }

  /** Writes status with compare-and-set on the pod's current revision, keeping whatever else changed. */
  private async writeStatus(pod: Pod, status: PodStatus): Promise<void> {
    const key = podKey({ namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name });
    for (let i = 0; i < 10; i++) {
      const kv = await this.o.store.get(key);
      if (!kv) return;
      const cur = JSON.parse(kv.value) as Pod;
      if (cur.metadata.uid !== pod.metadata.uid) return;
      if (sameStatus(cur.status, status)) return;
      cur.status = { ...cur.status, ...status };
      if (status.message === undefined) delete cur.status.message;
      if (await this.o.store.update(key, JSON.stringify(cur), kv.modRevision)) return;
    }
    throw new Error(`pod ${pod.metadata.namespace}/${pod.metadata.name}: status update kept conflicting`);
  }
}


function sameStatus(a: PodStatus | undefined, b: PodStatus): boolean {
  if (!a) return false;
  return a.phase === b.phase && a.podIP === b.podIP && a.hostIP === b.hostIP && a.message === b.message
    && JSON.stringify(a.podIPs) === JSON.stringify(b.podIPs) && JSON.stringify(a.conditions) === JSON.stringify(b.conditions);
}
