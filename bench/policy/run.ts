// bench/policy: flatnet's NetworkPolicy table (one nft table of sets and verdict maps) against an
// iptables + ipset ruleset of the per-pod-chain shape kube-router and Calico use, side by side in one
// run, over 200 pods in 20 namespaces on one node and N = 0…5,000 generated policies: full sync, one
// policy added, one pod added, one label changed, and the connect latency of fresh TCP connects between
// allowed pods. What is measured, and how: bench/README.md, section bench/policy.
//
// Usage: node dist/bench/policy/run.js [--sizes 0,10,100,1000,5000] [--connects 2000] [--rounds 10]
//                                      [--repeat 3] [--seed 1] [--no-flatnet] [--json]
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { percentile } from '../cni/stats.js';
import { Scope, run } from '../proxy/topology.js';
import { useCommandRunner } from '../../src/kernel/exec.js';
import { ShellPool } from '../../src/kernel/shell-pool.js';
import { benchFlatnet, flatnetNode, type FlatnetNode, type FlatnetResult } from './flatnet.js';
import { buildNatives, connectTimes, latency, removeNatives, startServer, type Natives, type Pair } from './native.js';
import { EMPTY_FILTER, IP_SET_MAX, renderReference } from './reference.js';
import { printSize, printTargets, targets, type ReferenceResult, type SizeResult } from './report.js';
import { makeTopology, netnsPath, type Topology } from './topology.js';
import { checkVerdicts, sampleVerdicts } from './verdicts.js';
import { ADDED_POD_INDEX, PROBE_PORT, SERVE_PORTS, makeWorld, podIP, probePairs, type PolicyWorld } from './world.js';

const { values } = parseArgs({ options: {
  sizes: { type: 'string', default: '0,10,100,1000,5000' }, connects: { type: 'string', default: '2000' },
  rounds: { type: 'string', default: '10' }, repeat: { type: 'string', default: '3' }, seed: { type: 'string', default: '1' },
  'no-flatnet': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
} });
const sizes = [...new Set(values.sizes.split(',').map(Number))].sort((a, b) => a - b);
if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 0 || n > 20_000)) throw new Error(`--sizes: whole numbers from 0 to 20000, got "${values.sizes}"`);
const connects = Number(values.connects);
if (!Number.isInteger(connects) || connects < 1) throw new Error(`--connects: a whole number from 1, got "${values.connects}"`);
// Connects are split into rounds that visit every ruleset, alternating which goes first, so drift hits all alike.
const rounds = Math.max(1, Number(values.rounds));
const repeat = Math.max(1, Number(values.repeat));
const seed = Number(values.seed);

const say = (m: string) => process.stderr.write(m + '\n');
/** bench/proxy's scope under its own prefix, so a policy run's namespaces are told apart from a proxy run's. */
class PolicyScope extends Scope { override readonly prefix = `fnq${randomBytes(3).toString('hex')}`; }
const scope = new PolicyScope();
scope.installExitHandlers();
let natives: Natives | undefined;
let pool: ShellPool | undefined;
process.on('exit', () => { if (natives) removeNatives(natives); });

const inNode = (node: string, cmd: string, args: string[], input = '') => run('ip', ['netns', 'exec', node, cmd, ...args], input);

/** Empties the reference node: no rules (so no set is in use), then no sets. */
async function resetReference(node: string): Promise<void> {
  await inNode(node, 'iptables-restore', ['-w'], EMPTY_FILTER);
  await inNode(node, 'ipset', ['destroy']);
}

/** Loads the reference ruleset for `world` into an empty node, timed (median of up to --repeat loads). */
async function benchReference(node: string, world: PolicyWorld): Promise<ReferenceResult> {
  const r0 = performance.now();
  const ref = renderReference(world);
  const base = { rules: ref.rules, chains: ref.chains, sets: ref.sets, elements: ref.elements, isolating: ref.isolating, renderMs: performance.now() - r0 };
  if (ref.sets > IP_SET_MAX - 6) {
    await resetReference(node);
    return { ...base, loadMs: NaN, ipsetMs: NaN, iptablesMs: NaN, samples: 0, skipped: `${ref.sets} ipsets, the kernel allows ${IP_SET_MAX}` };
  }
  const samples: Array<{ ipset: number; iptables: number }> = [];
  const total = () => samples.reduce((a, s) => a + s.ipset + s.iptables, 0);
  while (samples.length < repeat && (samples.length === 0 || total() < 3000)) {
    await resetReference(node);
    const t0 = performance.now();
    await inNode(node, 'ipset', ['restore'], ref.ipsets);
    const t1 = performance.now();
    await inNode(node, 'iptables-restore', ['-w'], ref.iptables);
    samples.push({ ipset: t1 - t0, iptables: performance.now() - t1 });
  }
  const saved = await inNode(node, 'iptables-save', ['-t', 'filter']);
  const have = saved.split('\n').filter((l) => l.startsWith('-A ')).length;
  if (have !== ref.rules) say(`warning: the reference filter table holds ${have} rules, expected ${ref.rules}`);
  const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  return { ...base, loadMs: med(samples.map((s) => s.ipset + s.iptables)), ipsetMs: med(samples.map((s) => s.ipset)),
    iptablesMs: med(samples.map((s) => s.iptables)), samples: samples.length };
}

type Ruleset = 'flatnet' | 'iptables' | 'base';

/** Connects from the probe clients to allowed pods, in rounds over every ruleset loaded now. */
async function benchConnects(topos: Partial<Record<Ruleset, Topology>>, pairsOf: (t: Topology) => Pair[], index: number): Promise<Partial<Record<Ruleset, number[]>>> {
  const out: Partial<Record<Ruleset, number[]>> = {};
  const perRound = Math.ceil(connects / rounds);
  const names = Object.keys(topos) as Ruleset[];
  for (let r = 0; r < rounds; r++) {
    // Rotate the order every round (and per size), so no ruleset always runs first.
    const order = names.map((_, i) => names[(i + r + index) % names.length]);
    for (const name of order) out[name] = [...(out[name] ?? []), ...(await connectTimes(scope, natives!, pairsOf(topos[name]!), perRound))];
  }
  return out;
}

async function main(): Promise<void> {
  const loadStart = loadavg()[0];
  natives = await buildNatives();
  const version = (await run('iptables', ['--version'])).trim();
  const ipsetVersion = (await run('ipset', ['--version'])).trim().split('\n')[0];
  say(`bench/policy: sizes ${sizes.join(', ')}; ${connects} connects per ruleset and size in ${rounds} rounds; changes timed up to ${repeat}× (median); ${version}, ${ipsetVersion}; prefix ${scope.prefix}`);
  const t0 = performance.now();
  const topo: Partial<Record<Ruleset, Topology>> = {};
  let k = 0;
  for (const name of ['flatnet', 'iptables', 'base'] as Ruleset[]) {
    if (name === 'flatnet' && values['no-flatnet']) continue;
    const t = await makeTopology(scope, name.slice(0, 3), ++k, ADDED_POD_INDEX);
    await startServer(scope, natives, t.pods.map(netnsPath), SERVE_PORTS);
    topo[name] = t;
  }
  say(`topologies: ${Object.keys(topo).length} × (1 node + ${ADDED_POD_INDEX} pods) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let flatnet: FlatnetNode | undefined;
  let baseLabel = 'no rules';
  if (topo.flatnet) {
    // nft runs as in the agent: through its pool of shells (the warm CNI server installs one), not a spawn per call.
    useCommandRunner(pool = new ShellPool(8));
    flatnet = flatnetNode(netnsPath(topo.flatnet.node));
    await flatnetNode(netnsPath(topo.base!.node)).sync(makeWorld(0, seed));
    baseLabel = 'flatnet@0';
  }
  const probes = probePairs(seed);
  const pairsOf = (t: Topology): Pair[] => probes.map((p) => ({ netns: netnsPath(t.pods[p.from]), address: podIP(p.to), port: PROBE_PORT }));
  await resetReference(topo.iptables!.node);

  const results: SizeResult[] = [];
  for (const [i, size] of sizes.entries()) {
    const world = makeWorld(size, seed);
    let fnResult: FlatnetResult | undefined;
    let reference!: ReferenceResult;
    // Alternate which side loads first, so neither always runs on a machine the other just warmed.
    for (const side of i % 2 === 0 ? ['flatnet', 'iptables'] : ['iptables', 'flatnet']) {
      if (side === 'flatnet' && flatnet) fnResult = await benchFlatnet(flatnet, world, seed, repeat);
      if (side === 'iptables') reference = await benchReference(topo.iptables!.node, world);
    }
    const loaded = { ...topo };
    if (reference.skipped) delete loaded.iptables;
    const judged: Record<string, Topology> = {};
    for (const name of ['flatnet', 'iptables'] as const) if (loaded[name]) judged[name] = loaded[name]!;
    const verdicts = await checkVerdicts(scope, natives, judged, sampleVerdicts(world, seed));
    for (const [name, bad] of Object.entries(verdicts.disagree)) if (bad.length) say(`warning: ${name} at ${size} disagrees with the evaluator: ${bad.join('; ')}`);
    const us = await benchConnects(loaded, pairsOf, i);
    const r: SizeResult = {
      size, policies: world.policies.length, flatnet: fnResult, reference, verdicts,
      connect: { flatnet: us.flatnet && latency(us.flatnet), iptables: us.iptables && latency(us.iptables), base: latency(us.base!) },
    };
    results.push(r);
    say(`${size}: flatnet full ${fnResult ? fnResult.full.ms.toFixed(1) + ' ms' : '-'}, reference load ${reference.loadMs.toFixed(1)} ms; ` +
      `connect p50 flatnet ${r.connect.flatnet?.p50.toFixed(0) ?? '-'} µs, iptables ${r.connect.iptables?.p50.toFixed(0) ?? '-'} µs, ${baseLabel} ${r.connect.base.p50.toFixed(0)} µs`);
  }
  const loadEnd = loadavg()[0];
  const goals = targets(results);
  if (values.json) {
    console.log(JSON.stringify({ sizes, connects, rounds, repeat, seed, iptables: version, ipset: ipsetVersion, base: baseLabel,
      loadAvg1: { start: loadStart, end: loadEnd }, results, targets: goals }, null, 2));
    return;
  }
  console.log(`flatnet's nft policy table against iptables + ipset per-pod chains (${version}, ${ipsetVersion}), one run, seed ${seed}`);
  console.log(`200 pods in 20 namespaces on one node; connects: ${connects} per ruleset and size from 20 probe clients to 100 allowed pods (TCP ${PROBE_PORT}), connect() to SYN-ACK`);
  for (const r of results) printSize(r, baseLabel);
  console.log(`\ncontext: load average ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end; ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  printTargets(goals);
}

main().then(() => {
  pool?.close();
  const left = scope.cleanupSync();
  say(left.length ? `could not remove namespaces: ${left.join(' ')}` : `namespaces ${scope.prefix}-*: all removed`);
}, (err: unknown) => {
  say(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  pool?.close();
  scope.cleanupSync();
  process.exitCode = 1;
});
