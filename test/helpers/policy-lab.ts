// The NetworkPolicy lab of the upstream e2e suite: namespaces x, y, z with pods a, b, c (label pod=<name>)
// spread over the nodes, each serving TCP and UDP on 80 and 81 under named ports; a prober with one
// persistent `flatnet probe-worker --stream` per pod, which runs all 81 (from, to) pairs of a port at once
// and returns a truth table; expected tables come from the evaluator on the live objects.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cluster, labFor, type TestLab } from './lab.js';
import type { TestScope } from './scope.js';
import { podNetnsName } from '../../src/lab/pods.js';
import { NAMESPACE_PREFIX, NETWORKPOLICY_PREFIX, NODE_PREFIX, POD_PREFIX } from '../../src/api/keys.js';
import type { Namespace, NetworkPolicy, Node, Pod } from '../../src/api/types.js';
import { evaluateIn, indexWorld, type PolicyWorld } from '../../src/policy/evaluate.js';
import { WORKER_READY, type StreamedProbe, type WorkerResult } from '../../src/workload/probe-worker.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const POD_NAMES = ['a', 'b', 'c'] as const;
/** The 9 pods, "ns/name", in table order. */
export const PEERS: string[] = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));

export type Protocol = 'tcp' | 'udp';
/** A 9×9 truth table: row = from, column = to, in PEERS order. */
export type Truth = boolean[][];

/** Timeouts: an expected-denied pair gets one short attempt, an expected-allowed one the normal timeout and a retry. */
export const DENIED_TIMEOUT_MS = 1000;
export const ALLOWED_TIMEOUT_MS = 1500;

const PORTS = `[{ name: serve-80-tcp, containerPort: 80 }, { name: serve-81-tcp, containerPort: 81 }, { name: serve-80-udp, containerPort: 80, protocol: UDP }, { name: serve-81-udp, containerPort: 81, protocol: UDP }]`;

/** A pod of the lab: no command, so it runs `flatnet serve` on its declared ports (the lab's agnhost). */
export const podManifest = (peer: string, node: string, labels: Record<string, string> = { pod: peer.split('/')[1] }): string => {
  const [ns, name] = peer.split('/');
  return `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: ${ns}, labels: ${JSON.stringify(labels)} }\n`
    + `spec: { nodeName: ${node}, containers: [{ name: s, ports: ${PORTS} }] }\n`;
};

/** Namespaces x, y, z and the 9 pods, round robin over `nodes` (so pairs are both same-node and cross-node). */
export function labManifest(nodes: string[]): string {
  const docs = NAMESPACES.map((ns) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${ns} }\n`);
  PEERS.forEach((peer, i) => docs.push(podManifest(peer, nodes[i % nodes.length])));
  return docs.join('---\n');
}

/** Upstream's reachability table: "." reaches, "X" does not. */
export function formatTruth(t: Truth, mark: (from: number, to: number) => string = (i, j) => (t[i][j] ? '.' : 'X')): string {
  const lines = [['-', ...PEERS].join('\t')];
  PEERS.forEach((from, i) => lines.push([from, ...PEERS.map((_, j) => mark(i, j))].join('\t')));
  return lines.join('\n');
}

/** Expected, observed and their comparison ("X" where they differ), as the upstream suite prints on a mismatch. */
export function formatComparison(what: string, expected: Truth, observed: Truth): string {
  let wrong = 0;
  for (let i = 0; i < PEERS.length; i++) for (let j = 0; j < PEERS.length; j++) if (expected[i][j] !== observed[i][j]) wrong++;
  return [`reachability ${what}: correct ${81 - wrong}, incorrect ${wrong}`, 'expected:', formatTruth(expected), 'observed:', formatTruth(observed),
    'comparison:', formatTruth(expected, (i, j) => (expected[i][j] === observed[i][j] ? '.' : 'X'))].join('\n');
}

const equal = (a: Truth, b: Truth) => a.every((row, i) => row.every((v, j) => v === b[i][j]));

/** One `flatnet probe-worker --stream` in a pod's namespace, alive for the whole test file. */
class Worker {
  private readonly waiting = new Map<number, (r: WorkerResult) => void>();
  readonly ready: Promise<void>;
  private err = '';
  constructor(readonly netns: string, private readonly child: ChildProcess) {
    child.stderr!.on('data', (b: Buffer) => { this.err += b.toString(); });
    child.stdin!.on('error', () => undefined);
    this.ready = new Promise((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === WORKER_READY) return resolve();
        const r = JSON.parse(line) as WorkerResult;
        this.waiting.get(r.id)?.(r);
        this.waiting.delete(r.id);
      });
      child.once('exit', (code) => {
        const why = `probe worker in ${netns} exited (${code}): ${this.err.trim()}`;
        reject(new Error(why));
        for (const [id, done] of this.waiting) done({ id, ok: false, ms: 0, attempts: 0, error: why });
        this.waiting.clear();
      });
    });
  }
  end(): void { this.child.stdin!.end(); }
  run(p: StreamedProbe): Promise<WorkerResult> {
    return new Promise((resolve) => { this.waiting.set(p.id, resolve); this.child.stdin!.write(`${JSON.stringify(p)}\n`); });
  }
}

export interface ProbeSpec { from: string; host: string; port: number; protocol: Protocol; expect: boolean }

export class PolicyLab {
  readonly pods = new Map<string, Pod>();
  private readonly workers = new Map<string, Worker>();
  private nextId = 0;
  private constructor(readonly t: TestLab, private readonly scope: TestScope) {}

  /** Brings up a 3-node lab with the 9 pods, all Ready, and a probe worker in each. */
  static async up(scope: TestScope, suffix: string): Promise<PolicyLab> {
    const t = labFor(scope, suffix);
    await t.lab.up(cluster('auto'));
    const pl = new PolicyLab(t, scope);
    const nodes = t.lab.plan().nodes.map((n) => n.name);
    await t.applyAndRun('policy-lab.yaml', labManifest(nodes), PEERS.length, 60_000);
    await pl.refreshPods();
    await Promise.all(PEERS.map((peer) => pl.worker(peer).ready));
    return pl;
  }

  nodeOf(peer: string): string { return this.pods.get(peer)!.spec.nodeName!; }
  ipOf(peer: string): string { return this.pods.get(peer)!.status!.podIP!; }
  netnsOf(peer: string): string { return podNetnsName(this.t.lab.name, this.pods.get(peer)!.metadata.uid!); }
  nodeNetns(node: string): string { return this.t.lab.plan().nodes.find((n) => n.name === node)!.netns; }

  private worker(peer: string): Worker {
    let w = this.workers.get(peer);
    if (!w) {
      const netns = this.netnsOf(peer);
      const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, CLI, 'probe-worker', '--stream'], { stdio: ['pipe', 'pipe', 'pipe'] });
      this.scope.adoptProcess(child);
      w = new Worker(netns, child);
      this.workers.set(peer, w);
    }
    return w;
  }

  /** Re-reads the pods (labels and IPs) from the store. */
  async refreshPods(): Promise<void> {
    const store = this.t.lab.store();
    try {
      for (const kv of (await store.list(POD_PREFIX)).items) {
        const p = JSON.parse(kv.value) as Pod;
        const id = `${p.metadata.namespace}/${p.metadata.name}`;
        if (PEERS.includes(id)) this.pods.set(id, p);
      }
    } finally { await store.close(); }
  }

  /** The live objects, as the evaluator takes them. */
  async world(): Promise<PolicyWorld> {
    const store = this.t.lab.store();
    const list = async <T>(prefix: string) => (await store.list(prefix)).items.map((kv) => JSON.parse(kv.value) as T);
    try {
      return { namespaces: await list<Namespace>(NAMESPACE_PREFIX), pods: await list<Pod>(POD_PREFIX), policies: await list<NetworkPolicy>(NETWORKPOLICY_PREFIX), nodes: await list<Node>(NODE_PREFIX) };
    } finally { await store.close(); }
  }

  /** The evaluator's 9×9 table for a port; a pod always reaches itself (its own IP stays on its loopback). */
  async expected(port: number, protocol: Protocol): Promise<Truth> {
    const idx = indexWorld(await this.world());
    return PEERS.map((from) => PEERS.map((to) => from === to
      || evaluateIn(idx, { from: this.ipOf(from), to: this.ipOf(to), port, protocol: protocol === 'tcp' ? 'TCP' : 'UDP' }).allowed));
  }

  /** Runs probes all at once, each from its source pod's worker; expected-denied ones get one short attempt. */
  async probe(specs: ProbeSpec[]): Promise<WorkerResult[]> {
    return Promise.all(specs.map((s) => this.worker(s.from).run({
      id: this.nextId++, host: s.host, port: s.port, protocol: s.protocol,
      ...(s.expect ? { timeoutMs: ALLOWED_TIMEOUT_MS, attempts: 2, backoffMs: [250] } : { timeoutMs: DENIED_TIMEOUT_MS, attempts: 1 }),
    })));
  }

  /** All 81 pairs of a port, probed in parallel; `expected` picks each pair's timeout. */
  async observe(port: number, protocol: Protocol, expected: Truth): Promise<Truth> {
    const specs = PEERS.flatMap((from, i) => PEERS.map((to, j) => ({ from, host: this.ipOf(to), port, protocol, expect: expected[i][j] })));
    const rs = await this.probe(specs);
    return PEERS.map((_, i) => PEERS.map((__, j) => rs[i * PEERS.length + j].ok));
  }

  /**
   * Polls the matrix until it equals the evaluator's (policies take effect) or `timeoutMs` passes, then
   * asserts it, printing the tables on a mismatch. Returns the expected table.
   */
  async assertMatrix(port: number, protocol: Protocol, timeoutMs = 10_000): Promise<Truth> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const expected = await this.expected(port, protocol);
      const observed = await this.observe(port, protocol, expected);
      if (equal(expected, observed)) return expected;
      if (Date.now() > deadline) assert.fail(formatComparison(`${protocol.toUpperCase()}/${port}`, expected, observed));
    }
  }

  /**
   * Every pod to a Service address, polled until it agrees with the evaluator judging each connection
   * after DNAT (against the one backend and its port) or `timeoutMs` passes; returns which sources reach.
   */
  async assertService(host: string, port: number, backend: string, targetPort: number, protocol: Protocol = 'tcp', timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const idx = indexWorld(await this.world());
      const expected = PEERS.map((from) => evaluateIn(idx, { from: this.ipOf(from), to: this.ipOf(backend), port: targetPort, protocol: protocol === 'tcp' ? 'TCP' : 'UDP' }).allowed);
      const rs = await this.probe(PEERS.map((from, i) => ({ from, host, port, protocol, expect: expected[i] })));
      const wrong = PEERS.filter((_, i) => rs[i].ok !== expected[i] || (rs[i].ok && rs[i].server !== backend));
      if (wrong.length === 0) return PEERS.filter((_, i) => expected[i]);
      if (Date.now() > deadline) {
        assert.fail(`${host}:${port}/${protocol} (backend ${backend}:${targetPort}): ${wrong.map((p) => `${p} expected ${expected[PEERS.indexOf(p)] ? 'reach' : 'no answer'}, got ${JSON.stringify(rs[PEERS.indexOf(p)])}`).join('; ')}`);
      }
    }
  }

  /** `flatnet apply -f` of a manifest (saved in the test's dir). */
  apply(file: string, manifest: string): void {
    const path = join(this.scope.dir, file);
    writeFileSync(path, manifest);
    const r = this.t.cli('apply', '-f', path);
    assert.equal(r.status, 0, r.stderr);
  }

  /** `flatnet apply -f` of NetworkPolicies; they are stored when it returns. */
  applyPolicies(file: string, manifest: string): void { this.apply(file, manifest); }

  /** Deletes every NetworkPolicy (between cases), straight from the store. */
  async deleteAllPolicies(): Promise<void> {
    const store = this.t.lab.store();
    try {
      for (const kv of (await store.list(NETWORKPOLICY_PREFIX)).items) await store.delete(kv.key);
    } finally { await store.close(); }
  }

  /** Whether a node's policy table maps `ip` in `map` (ingress or egress): its agent has synced that pod. */
  policyMapHas(node: string, map: 'ingress' | 'egress', ip: string): boolean {
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.nodeNetns(node)}`, 'nft', 'list', 'map', 'inet', 'flatnet-policy', map], { encoding: 'utf8' });
    return r.status === 0 && new RegExp(`[\\s{,]${ip.replace(/\./g, '\\.')} :`).test(r.stdout);
  }

  /** Relabels one pod by applying it again with other labels (its spec unchanged). */
  async relabel(peer: string, labels: Record<string, string>): Promise<void> {
    this.apply(`relabel-${peer.replace('/', '-')}.yaml`, podManifest(peer, this.nodeOf(peer), labels));
    await this.refreshPods();
  }

  /** Ends the workers (their input closes; the scope kills any left by pid); the scope removes the lab. */
  close(): void {
    for (const w of this.workers.values()) w.end();
    this.workers.clear();
  }
}
