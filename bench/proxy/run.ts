// bench/proxy: flatnet's service proxy (one nft table driven by maps, src/dataplane/proxy) against
// kube-proxy's iptables mode, side by side in one run: time to load N Services, to add one, to change
// one endpoint, and (flatnet) a restarted agent's first sync; then TCP connect latency through each
// ruleset to the first and to the last Service. What is measured, and how: bench/proxy/README.md.
//
// Usage: node dist/bench/proxy/run.js [--sizes 10,1000,5000,10000] [--connects 300] [--rounds 10]
//                                     [--repeat 3] [--iptables-restore CMD] [--json]
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Netns } from '../../src/kernel/netns.js';
import { spawnCommand } from '../../src/kernel/exec.js';
import { ProxyApplier, type ProxySyncReport } from '../../src/dataplane/proxy/apply.js';
import { ProxyState } from '../../src/dataplane/proxy/state.js';
import { serviceId } from '../../src/api/types.js';
import { percentile } from '../cni/stats.js';
import { CIDRS, ENDPOINTS_PER_SERVICE, PROXY_NODE, clusterIP, makeCluster, withChangedEndpoint, type Cluster } from './cluster.js';
import { renderKubeProxyNat, restoreInput, ruleCount, type NatRuleset } from './kube-iptables.js';
import { Scope, connectLatency, makeBackends, makeTopology, run, type Topology } from './topology.js';

const { values } = parseArgs({ options: {
  sizes: { type: 'string', default: '10,1000,5000,10000' }, connects: { type: 'string', default: '300' },
  rounds: { type: 'string', default: '10' }, repeat: { type: 'string', default: '3' },
  'iptables-restore': { type: 'string', default: 'iptables-restore' }, json: { type: 'boolean', default: false },
} });
const sizes = [...new Set(values.sizes.split(',').map(Number))].sort((a, b) => a - b);
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 19_999)) throw new Error(`--sizes: whole numbers from 1 to 19999, got "${values.sizes}"`);
const connects = Number(values.connects);
if (!Number.isInteger(connects) || connects < 1) throw new Error(`--connects: a whole number from 1, got "${values.connects}"`);
// Connect measurements are split into rounds that visit every size and proxy, so drift hits all alike;
// many short client processes rather than few long ones, as one process's p50 alone varies 60-180 µs here.
const rounds = Math.max(1, Number(values.rounds));
// Each change is timed up to this many times (toggled back untimed in between); the median is reported.
const repeat = Math.max(1, Number(values.repeat));
const restoreCmd = values['iptables-restore'];
const saveCmd = restoreCmd.replace(/restore$/, 'save');

const say = (m: string) => process.stderr.write(m + '\n');
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const scope = new Scope();
scope.installExitHandlers();

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Stop repeating a figure once its samples add up to this: a full iptables-restore of 10,000 Services takes a minute. */
const REPEAT_BUDGET_MS = 3000;

interface Timing<T> { ms: number; samples: number[]; value: T }

/**
 * Times `toTarget` from the base state up to `repeat` times (fewer past REPEAT_BUDGET_MS), going back
 * with `toBase` untimed in between; `ms` is the median.
 */
async function toggled<T>(toBase: () => Promise<unknown>, toTarget: () => Promise<T>): Promise<Timing<T>> {
  const samples: number[] = [];
  let value!: T;
  while (samples.length < repeat && (samples.length === 0 || samples.reduce((a, b) => a + b, 0) < REPEAT_BUDGET_MS)) {
    if (samples.length > 0) await toBase();
    const r = await timed(toTarget);
    samples.push(r.ms);
    value = r.value;
  }
  return { ms: median(samples), samples, value };
}

/** The three states every size goes through: N Services, one more, then one endpoint changed. */
interface States { n: Cluster; added: Cluster; changed: Cluster }

function states(n: number): States {
  const added = makeCluster(n + 1);
  return {
    n: { services: added.services.slice(0, n), slices: added.slices.slice(0, n) },
    added,
    changed: withChangedEndpoint(added, Math.floor(n / 2)),
  };
}

interface FlatnetResult {
  renderMs: number; fullMs: number; fullOps: number; addMs: number; addOps: number;
  changeMs: number; changeOps: number; restartMs: number; restartOps: number;
  samplesMs: { add: number[]; change: number[]; restart: number[] };
}

async function benchFlatnet(node: string, s: States, n: number): Promise<FlatnetResult> {
  const ns = new Netns(`/run/netns/${node}`);
  // The agent's own path: a change goes into ProxyState (one Service re-rendered), the applier writes
  // what that touched. Full sync and restart render every Service first, as a starting agent does.
  const view = { nodeName: PROXY_NODE, nodeIPs: [] };
  const id = (o: { metadata: { namespace?: string; name: string } }) => serviceId(o.metadata.namespace, o.metadata.name);
  const load = (st: ProxyState, c: Cluster) => {
    for (const x of c.services) st.setService(id(x), x);
    for (const x of c.slices) st.setSlice(id(x), x);
  };
  const render = await timed(async () => { const st = new ProxyState(view); load(st, s.n); st.take(); });
  const state = new ProxyState(view);
  const applier = new ProxyApplier(ns, CIDRS);
  const sync = () => applier.sync(state.plan, state.take());
  const full = await timed(async () => { load(state, s.n); return sync(); });
  const [svc, slice] = [s.added.services[n], s.added.slices[n]];
  const add = await toggled(
    async () => { state.setService(id(svc), undefined); state.setSlice(id(slice), undefined); await sync(); },
    async () => { state.setService(id(svc), svc); state.setSlice(id(slice), slice); return sync(); });
  const mid = Math.floor(n / 2);
  const [was, is] = [s.added.slices[mid], s.changed.slices[mid]];
  const change = await toggled(async () => { state.setSlice(id(was), was); await sync(); }, async () => { state.setSlice(id(is), is); return sync(); });
  // A restarted agent: a new state renders everything, a new applier reads the table back and should find nothing to write.
  const restart = await toggled(async () => undefined, async () => {
    const st = new ProxyState(view);
    load(st, s.changed);
    return new ProxyApplier(ns, CIDRS).sync(st.plan, st.take());
  });
  const ops = (r: ProxySyncReport) => r.operations;
  if (!full.value.rebuilt) say('warning: flatnet first sync did not build the table');
  if (restart.value.operations !== 0 || restart.value.rebuilt) say(`warning: flatnet restart sync wrote ${JSON.stringify(restart.value)}`);
  return {
    renderMs: render.ms, fullMs: full.ms, fullOps: ops(full.value), addMs: add.ms, addOps: ops(add.value),
    changeMs: change.ms, changeOps: ops(change.value), restartMs: restart.ms, restartOps: ops(restart.value),
    samplesMs: { add: add.samples, change: change.samples, restart: restart.samples },
  };
}

interface IptablesResult {
  renderMs: number; rules: number; inputMB: number; fullMs: number; addMs: number; changeMs: number;
  partialAddMs: number; partialChangeMs: number;
  samplesMs: { add: number[]; change: number[]; partialAdd: number[]; partialChange: number[] };
}

async function benchIptables(node: string, s: States): Promise<IptablesResult> {
  const restore = (text: string) => run('ip', ['netns', 'exec', node, restoreCmd, '-w', '--noflush'], text);
  const nat = (c: Cluster): NatRuleset => renderKubeProxyNat(c.services, c.slices, CIDRS.clusterCIDR);
  const render = await timed(async () => { const r = nat(s.n); return { r, text: restoreInput(r, undefined, false) }; });
  const [n, added, changed] = [render.value.r, nat(s.added), nat(s.changed)];
  const full = await timed(() => restore(render.value.text));
  // kube-proxy's full sync: the whole nat table again, here with N+1 Services, then with the changed
  // endpoint (what every change cost before MinimizeIPTablesRestore; each periodic resync still does).
  const add = await toggled(() => restore(restoreInput(n, added, false)), () => restore(restoreInput(added, n, false)));
  const change = await toggled(() => restore(restoreInput(added, changed, false)), () => restore(restoreInput(changed, added, false)));
  // kube-proxy >= 1.27's partial sync: KUBE-SERVICES and the other header chains whole, plus the
  // changed Service's chains (and -X for chains that went). Back to N Services first, the same way.
  await restore(restoreInput(n, changed, true));
  const partialAdd = await toggled(() => restore(restoreInput(n, added, true)), () => restore(restoreInput(added, n, true)));
  const partialChange = await toggled(() => restore(restoreInput(added, changed, true)), () => restore(restoreInput(changed, added, true)));
  const saved = await run('ip', ['netns', 'exec', node, saveCmd, '-t', 'nat']);
  const have = saved.split('\n').filter((l) => l.startsWith('-A ')).length;
  if (have !== ruleCount(changed)) say(`warning: iptables nat table holds ${have} rules, expected ${ruleCount(changed)}`);
  return {
    renderMs: render.ms, rules: ruleCount(n), inputMB: Buffer.byteLength(render.value.text) / 1e6, fullMs: full.ms,
    addMs: add.ms, changeMs: change.ms, partialAddMs: partialAdd.ms, partialChangeMs: partialChange.ms,
    samplesMs: { add: add.samples, change: change.samples, partialAdd: partialAdd.samples, partialChange: partialChange.samples },
  };
}

type Proxy = 'flatnet' | 'iptables';
type Target = 'first' | 'last';
interface Latency { p50: number; p99: number; n: number }

interface SizeRun { size: number; topo: Record<Proxy, Topology>; flatnet: FlatnetResult; iptables: IptablesResult }

/**
 * Connects to the first Service and to the last (the last KUBE-SERVICES rule: iptables' slow case),
 * in rounds that visit every size, target and proxy, alternating which proxy goes first.
 */
async function benchConnects(runs: SizeRun[]): Promise<Map<string, Latency>> {
  const samples = new Map<string, number[]>();
  const perRound = Math.ceil(connects / rounds);
  let turn = 0;
  for (let r = 0; r < rounds; r++) {
    for (const run of runs) {
      for (const target of ['first', 'last'] as Target[]) {
        // The last Service is the one added by the "+1 service" step: index N.
        const host = clusterIP(target === 'first' ? 0 : run.size);
        const order: Proxy[] = turn++ % 2 === 0 ? ['flatnet', 'iptables'] : ['iptables', 'flatnet'];
        for (const proxy of order) {
          const res = await connectLatency(scope, run.topo[proxy].client, host, perRound);
          const key = `${run.size}/${proxy}/${target}`;
          samples.set(key, [...(samples.get(key) ?? []), ...res.us]);
        }
      }
    }
    say(`connect round ${r + 1}/${rounds} done`);
  }
  const out = new Map<string, Latency>();
  for (const [key, us] of samples) {
    const s = [...us].sort((a, b) => a - b);
    out.set(key, { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length });
  }
  return out;
}

/** Spawn floors: what a sync pays before nft or iptables-restore does anything. */
async function spawnFloors(node: string): Promise<{ nsenterMs: number; ipNetnsExecMs: number }> {
  const floor = async (cmd: string, args: string[]) => {
    const ms: number[] = [];
    for (let i = 0; i < 7; i++) ms.push((await timed(() => spawnCommand(cmd, args))).ms);
    return median(ms);
  };
  return {
    nsenterMs: await floor('nsenter', [`--net=/run/netns/${node}`, 'true']),
    ipNetnsExecMs: await floor('ip', ['netns', 'exec', node, 'true']),
  };
}

const f1 = (x: number) => x.toFixed(1);
const f0 = (x: number) => x.toFixed(0);
/** a/b to two decimals, or two significant digits below 0.1 (0.00024×, not 0.000×). */
const ratio = (a: number, b: number) => `${a / b < 0.1 ? Number((a / b).toPrecision(2)) : (a / b).toFixed(2)}×`;

function printSize(r: SizeRun, lat: Map<string, Latency>): void {
  const l = (p: Proxy, t: Target) => lat.get(`${r.size}/${p}/${t}`)!;
  const conn = (p: Proxy, t: Target) => `${f0(l(p, t).p50)} / ${f0(l(p, t).p99)}`;
  const fn = r.flatnet, ip = r.iptables;
  const row = (name: string, cells: string[]) => console.log(name.padEnd(18) + cells.map((c, i) => c.padStart([11, 16, 16, 13, 14, 14][i])).join(''));
  console.log(`\n${r.size} Services × ${ENDPOINTS_PER_SERVICE} endpoints (${ip.rules} iptables rules, ${f1(ip.inputMB)} MB restore input)`);
  row('', ['full sync', '+1 service', 'changed ep', 'restart', 'first p50/p99', 'last p50/p99']);
  row('', ['ms', 'ms (ops)', 'ms (ops)', 'ms (ops)', 'µs', 'µs']);
  row('flatnet', [f1(fn.fullMs), `${f1(fn.addMs)} (${fn.addOps})`, `${f1(fn.changeMs)} (${fn.changeOps})`, `${f1(fn.restartMs)} (${fn.restartOps})`, conn('flatnet', 'first'), conn('flatnet', 'last')]);
  row('iptables', [f1(ip.fullMs), f1(ip.addMs), f1(ip.changeMs), '-', conn('iptables', 'first'), conn('iptables', 'last')]);
  row('iptables partial', ['-', f1(ip.partialAddMs), f1(ip.partialChangeMs), '-', '', '']);
  console.log(`flatnet/iptables: full sync ${ratio(fn.fullMs, ip.fullMs)}, +1 service ${ratio(fn.addMs, ip.addMs)} (partial ${ratio(fn.addMs, ip.partialAddMs)}), ` +
    `changed endpoint ${ratio(fn.changeMs, ip.changeMs)} (partial ${ratio(fn.changeMs, ip.partialChangeMs)}), ` +
    `connect p50 first ${ratio(l('flatnet', 'first').p50, l('iptables', 'first').p50)}, last ${ratio(l('flatnet', 'last').p50, l('iptables', 'last').p50)}`);
  const n = (xs: number[]) => xs.length;
  console.log(`samples per change figure (median taken): flatnet ${n(fn.samplesMs.add)}/${n(fn.samplesMs.change)}/${n(fn.samplesMs.restart)}, ` +
    `iptables ${n(ip.samplesMs.add)}/${n(ip.samplesMs.change)}, partial ${n(ip.samplesMs.partialAdd)}/${n(ip.samplesMs.partialChange)}; ` +
    `rendering: flatnet every Service ${f1(fn.renderMs)} ms (inside its full sync and restart), iptables rules + restore text ${f1(ip.renderMs)} ms (not in its times)`);
}

interface TargetResult { name: string; value: string; met: boolean }

function targets(runs: SizeRun[], lat: Map<string, Latency>): TargetResult[] {
  const big = runs[runs.length - 1], small = runs[0];
  const at = big.size === 10_000 ? '' : ` (run at ${big.size}, not 10000)`;
  const last = (r: SizeRun, p: Proxy) => lat.get(`${r.size}/${p}/last`)!.p50;
  const change = Math.max(big.flatnet.addMs, big.flatnet.changeMs);
  return [
    { name: `10,000 Services full sync ≤ 1 s${at}`, value: `${f1(big.flatnet.fullMs)} ms`, met: big.flatnet.fullMs <= 1000 },
    { name: `one change ≤ 50 ms${at}`, value: `+1 service ${f1(big.flatnet.addMs)} ms, changed endpoint ${f1(big.flatnet.changeMs)} ms`, met: change <= 50 },
    { name: `restart ≤ 0.5 s, writing nothing${at}`, value: `${f1(big.flatnet.restartMs)} ms, ${big.flatnet.restartOps} operations`,
      met: big.flatnet.restartMs <= 500 && big.flatnet.restartOps === 0 },
    { name: `flatnet connect p50 (last Service) at 10,000 ≤ 1.1× at 10${at}${small.size === 10 ? '' : ` (small size ${small.size})`}`,
      value: `${f0(last(big, 'flatnet'))} µs vs ${f0(last(small, 'flatnet'))} µs = ${ratio(last(big, 'flatnet'), last(small, 'flatnet'))}`,
      met: last(big, 'flatnet') <= 1.1 * last(small, 'flatnet') },
    { name: `flatnet connect p50 (last Service) at 10,000 ≤ 0.5× iptables${at}`,
      value: `${f0(last(big, 'flatnet'))} µs vs ${f0(last(big, 'iptables'))} µs = ${ratio(last(big, 'flatnet'), last(big, 'iptables'))}`,
      met: last(big, 'flatnet') <= 0.5 * last(big, 'iptables') },
  ];
}

async function main(): Promise<void> {
  const loadStart = loadavg()[0];
  const backends = await makeBackends(scope);
  const version = (await run('ip', ['netns', 'exec', backends, restoreCmd, '--version'])).trim();
  say(`bench/proxy: sizes ${sizes.join(', ')}; ${connects} connects per proxy, size and Service in ${rounds} rounds; changes timed up to ${repeat}× (median); ${version}; prefix ${scope.prefix}`);
  const runs: SizeRun[] = [];
  let k = 0;
  for (const [i, size] of sizes.entries()) {
    const s = states(size);
    const topo = { flatnet: await makeTopology(scope, `f${size}`, ++k, backends), iptables: await makeTopology(scope, `i${size}`, ++k, backends) };
    // Alternate which proxy loads first, so neither always runs on a machine the other just warmed.
    let flatnet: FlatnetResult | undefined, iptables: IptablesResult | undefined;
    for (const p of (i % 2 === 0 ? ['flatnet', 'iptables'] : ['iptables', 'flatnet']) as Proxy[]) {
      if (p === 'flatnet') flatnet = await benchFlatnet(topo.flatnet.node, s, size);
      else iptables = await benchIptables(topo.iptables.node, s);
    }
    runs.push({ size, topo, flatnet: flatnet!, iptables: iptables! });
    say(`${size}: flatnet full ${f1(flatnet!.fullMs)} ms, iptables full ${f1(iptables!.fullMs)} ms`);
  }
  const lat = await benchConnects(runs);
  const floors = await spawnFloors(runs[0].topo.flatnet.node);
  const loadEnd = loadavg()[0];
  const goals = targets(runs, lat);
  if (values.json) {
    console.log(JSON.stringify({
      sizes, connects, rounds, repeat, iptables: version, loadAvg1: { start: loadStart, end: loadEnd }, spawnFloorsMs: floors,
      results: runs.map((r) => ({
        size: r.size, flatnet: r.flatnet, iptables: r.iptables,
        connectUs: Object.fromEntries(['flatnet', 'iptables'].flatMap((p) => ['first', 'last'].map((t) => [`${p}/${t}`, lat.get(`${r.size}/${p}/${t}`)]))),
      })),
      targets: goals,
    }, null, 2));
    return;
  }
  console.log(`flatnet's nft service proxy against kube-proxy's iptables mode (${version}), one run`);
  for (const r of runs) printSize(r, lat);
  console.log(`\ncontext: load average ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end; spawn floors: nsenter ${f1(floors.nsenterMs)} ms (flatnet's nft), ip netns exec ${f1(floors.ipNetnsExecMs)} ms (iptables-restore)`);
  console.log('targets:');
  for (const g of goals) console.log(`  ${g.name}: ${g.value} — ${g.met ? 'met' : 'NOT met'}`);
}

main().then(() => {
  const left = scope.cleanupSync();
  say(left.length ? `could not remove namespaces: ${left.join(' ')}` : `namespaces ${scope.prefix}-*: all removed`);
}, (err: unknown) => {
  say(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  scope.cleanupSync();
  process.exitCode = 1;
});
