// CNI bench: ADD and DEL latency and pods/s of flatnet-cni against Debian's reference bridge +
// host-local plugins, all measured in the same run so machine noise hits each. flatnet-cni runs
// twice: warm (the shim answered by the agent's server, running in its node netns) and cold (the
// shim with no server there, so the Node plugin per call).
//
//   node dist/bench/cni/run.js [--quick] [--pods N] [--json] [--only reference|flatnet|flatnet-cold]
//                              [--no-cold] [--flatnet PATH] [--reference-dir DIR] ...   (--help for all)
//
// Everything happens in network namespaces this run creates ("fnb<hex>-..."): one "node" netns per
// plugin, where the plugin (and the warm server) runs and its bridge lives, and one fresh netns per
// pod. All of them are deleted at the end, also on error and on SIGINT/SIGTERM. See bench/README.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchNamespaces } from './netns.js';
import {
  add, del, invoke, newPod, PluginCallError, runtimePath, verifyAdded, verifyDeleted,
  type Pod, type PluginKey, type PluginUnderTest,
} from './plugin.js';
import { round, summarize, type Summary } from './stats.js';
import { CNI_SOCKET_DIR } from '../../src/cni/server.js';

const USAGE = `usage: node dist/bench/cni/run.js [options]

  --flatnet PATH        flatnet-cni executable (default: ../../bin/flatnet-cni next to this file)
  --reference-dir DIR   directory with the reference bridge and host-local (default /usr/lib/cni)
  --only WHICH          bench only "reference", "flatnet" (warm) or "flatnet-cold"
  --no-cold             skip flatnet-cold (the Node plugin per call)
  --pods N              pods per plugin for both the sequential and the concurrent run
  --seq-pods N          pods per plugin at concurrency 1 (default 30)
  --par-pods N          pods per plugin and round at concurrency C (default 50)
  --concurrency C       calls in flight in the concurrent run (default 8)
  --rounds R            concurrent rounds per plugin, alternating which plugin goes first (default 2)
  --warmup W            untimed ADD+DEL pairs per plugin before measuring (default 2)
  --quick               fast run: 10 sequential pods, 24 concurrent pods, 1 round, 1 warm-up
  --no-verify           skip the untimed checks of the pod netns after each ADD and DEL
  --json                print one JSON document on stdout (progress goes to stderr)
  --check               exit 3 when a target is not met
  -h, --help            this text`;

interface Options {
  flatnet: string;
  referenceDir: string;
  only?: PluginKey;
  cold: boolean;
  seqPods: number;
  parPods: number;
  concurrency: number;
  rounds: number;
  warmup: number;
  verify: boolean;
  json: boolean;
  check: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      flatnet: { type: 'string' },
      'reference-dir': { type: 'string' },
      only: { type: 'string' },
      'no-cold': { type: 'boolean' },
      pods: { type: 'string' },
      'seq-pods': { type: 'string' },
      'par-pods': { type: 'string' },
      concurrency: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean' },
      'no-verify': { type: 'boolean' },
      json: { type: 'boolean' },
      check: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, fallback: number, min: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer ≥ ${min}, got "${v}"`);
    return n;
  };
  const quick = values.quick === true;
  const pods = int('pods', values.pods, 0, 1) || undefined;
  if (values.only !== undefined && !['reference', 'flatnet', 'flatnet-cold'].includes(values.only)) {
    throw new UsageError(`--only: expected "reference", "flatnet" or "flatnet-cold", got "${values.only}"`);
  }
  return {
    flatnet: resolve(values.flatnet ?? fileURLToPath(new URL('../../bin/flatnet-cni', import.meta.url))),
    referenceDir: resolve(values['reference-dir'] ?? '/usr/lib/cni'),
    only: values.only as PluginKey | undefined,
    cold: values['no-cold'] !== true,
    seqPods: int('seq-pods', values['seq-pods'], pods ?? (quick ? 10 : 30), 1),
    parPods: int('par-pods', values['par-pods'], pods ?? (quick ? 24 : 50), 1),
    concurrency: int('concurrency', values.concurrency, 8, 1),
    rounds: int('rounds', values.rounds, quick ? 1 : 2, 1),
    warmup: int('warmup', values.warmup, quick ? 1 : 2, 0),
    verify: values['no-verify'] !== true,
    json: values.json === true,
    check: values.check === true,
  };
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------

const ns = new BenchNamespaces();
// Progress always goes to stderr, so stdout carries only the table or the JSON document.
const log = (msg: string): void => { process.stderr.write(msg + '\n'); };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function plugins(opts: Options, dataRoot: string): PluginUnderTest[] {
  const cniVersion = '1.0.0';
  const list: PluginUnderTest[] = [];
  const want = (key: PluginKey) => (opts.only === undefined ? key !== 'flatnet-cold' || opts.cold : opts.only === key);
  if (want('reference')) {
    for (const exe of ['bridge', 'host-local']) {
      if (!executable(join(opts.referenceDir, exe))) {
        throw new UsageError(`reference plugin ${join(opts.referenceDir, exe)} is missing (--reference-dir)`);
      }
    }
    list.push({
      key: 'reference', label: 'reference (bridge+host-local)',
      exe: join(opts.referenceDir, 'bridge'), cniPath: opts.referenceDir, nodeNetns: ns.name('node-ref'),
      config: {
        cniVersion, name: 'bench', type: 'bridge', bridge: 'rb0', isGateway: true,
        ipam: {
          type: 'host-local', ranges: [[{ subnet: '10.251.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }],
          dataDir: join(dataRoot, 'reference-ipam'),
        },
      },
    });
  }
  if ((want('flatnet') || want('flatnet-cold')) && !executable(opts.flatnet)) {
    throw new UsageError(`flatnet-cni ${opts.flatnet} is missing or not executable ` +
      `(build it, pass --flatnet PATH, or bench the harness with --only reference)`);
  }
  // The same shim both times: only whether a server listens in its node netns differs.
  const flatnet = (key: PluginKey, label: string, node: string, subnet: string, dataDir: string): PluginUnderTest => ({
    key, label, exe: opts.flatnet, cniPath: dirname(opts.flatnet), nodeNetns: ns.name(node),
    config: {
      cniVersion, name: 'bench', type: 'flatnet-cni', bridge: 'fb0',
      ipam: { ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dataRoot, dataDir) },
    },
  });
  if (want('flatnet')) list.push(flatnet('flatnet', 'flatnet-cni warm (server)', 'node-fn', '10.250.0.0/16', 'flatnet-ipam'));
  if (want('flatnet-cold')) list.push(flatnet('flatnet-cold', 'flatnet-cni cold (Node)', 'node-fncold', '10.249.0.0/16', 'flatnet-cold-ipam'));
  return list;
}

let podSeq = 0;
const podName = () => ns.name(`p${podSeq++}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates `count` pod namespaces (untimed, one spawn). */
async function makePods(count: number): Promise<Pod[]> {
  const pods = Array.from({ length: count }, () => newPod(ns, podName()));
  await ns.create(pods.map((p) => p.netns));
  return pods;
}

/** One pod's whole life at concurrency 1: netns, ADD (timed), check, DEL (timed), check, netns gone. */
async function podCycle(p: PluginUnderTest, verify: boolean): Promise<{ add: number; del: number }> {
  const [pod] = await makePods(1);
  const addMs = await add(ns, p, pod);
  if (verify) await verifyAdded(p, pod);
  const delMs = await del(ns, p, pod);
  if (verify) await verifyDeleted(p, pod);
  await ns.remove([pod.netns]);
  return { add: addMs, del: delMs };
}

/** CPU time the whole machine spent busy so far (user, system, interrupts), in ms: what a call costs beyond its wall time. */
function busyCpuMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user + nice + system + irq + softirq + (steal ?? 0)) * 1000) / 100;
}

/** Runs fn over items with at most `limit` in flight; returns the wall time of the whole batch. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<number> {
  let next = 0;
  let failed = false;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** `node -e 0` (and optionally another command) started with the given env: p50 of n runs. */
function startupMs(cmd: string, args: string[], env: NodeJS.ProcessEnv, n: number): Summary {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { env, stdio: 'ignore' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
    samples.push(ms);
  }
  return summarize(samples);
}

/** Starts the warm server (bench/cni/warm-server.js) inside `netns`, with a runtime's minimal environment. */
function startWarmServer(netns: string): Promise<{ child: ChildProcess; socketPath: string }> {
  const script = fileURLToPath(new URL('./warm-server.js', import.meta.url));
  if (!existsSync(CNI_SOCKET_DIR)) ns.emptyDirs.push(CNI_SOCKET_DIR);
  const child = spawn('nsenter', [`--net=${ns.path(netns)}`, process.execPath, script], {
    env: { PATH: runtimePath() }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  ns.children.add(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { err += b; });
    child.stdout!.on('data', (b: Buffer) => {
      out += b;
      if (!out.includes('\n')) return;
      const { socketPath } = JSON.parse(out) as { socketPath: string };
      ns.tempPaths.push(socketPath); // a killed server's socket goes at cleanup
      resolve({ child, socketPath });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`warm server exited ${code} before listening: ${err.trim()}`)));
  });
}

/** SIGTERM: the server closes and removes its socket; cleanup SIGKILLs it if it hangs. */
function stopWarmServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    child.once('exit', () => { clearTimeout(timer); ns.children.delete(child); resolve(); });
    process.kill(child.pid!, 'SIGTERM');
  });
}

interface PluginReport {
  key: PluginKey;
  label: string;
  exe: string;
  seq: { add: Summary; del: Summary };
  par: {
    concurrency: number;
    rounds: number;
    podsPerRound: number;
    addWallMs: number[];
    delWallMs: number[];
    addPodsPerSec: number;
    delPodsPerSec: number;
    add: Summary;
    del: Summary;
  };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new UsageError('the bench creates network namespaces: run it as root');

  ns.installExitHandlers();
  const dataRoot = mkdtempSync(join(tmpdir(), ns.prefix));
  ns.tempPaths.push(dataRoot);
  const list = plugins(opts, dataRoot);

  const loadStart = loadavg()[0];
  if (loadStart > cpus().length) log(`bench: warning: 1-min load average ${loadStart.toFixed(1)} on ${cpus().length} CPUs; expect noisy absolute figures (the ratios are fairer: the plugins alternate)`);
  log(`bench: run ${ns.prefix}*  plugins: ${list.map((p) => `${p.label} = ${p.exe}`).join('; ')}`);
  await ns.create(list.map((p) => p.nodeNetns));
  const warmNode = list.find((p) => p.key === 'flatnet')?.nodeNetns;
  const warm = warmNode ? await startWarmServer(warmNode) : undefined;
  if (warm) log(`bench: warm server pid ${warm.child.pid} on ${warm.socketPath} (in ${warmNode})`);

  // Context: what a bare Node start costs with a runtime's env, and with this shell's env.
  const minimalEnv = { PATH: runtimePath() };
  const nodeMinimal = startupMs(process.execPath, ['-e', '0'], minimalEnv, opts.warmup ? 10 : 5);
  const nodeShell = startupMs(process.execPath, ['-e', '0'], process.env, 5);
  const nsenterTrue = startupMs('nsenter', [`--net=${ns.path(list[0].nodeNetns)}`, 'true'], minimalEnv, 10);
  log(`bench: node -e 0 p50 ${nodeMinimal.p50.toFixed(1)} ms (PATH only), ${nodeShell.p50.toFixed(1)} ms (shell env)`);

  // A first call of each plugin: a failure here (e.g. flatnet-cni not finished) shows its output.
  for (const p of list) {
    const r = await invoke(ns, p, { PATH: runtimePath(), CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.0.0' }));
    if (r.code !== 0) {
      throw new PluginCallError(p, 'VERSION', 'non-zero exit', { PATH: runtimePath(), CNI_COMMAND: 'VERSION' }, r);
    }
  }

  // The fixed cost of a call: nsenter + shim + socket + server (warm) or + Node (cold) for a VERSION, which does no work.
  const versionEnv = { PATH: runtimePath(), CNI_COMMAND: 'VERSION' };
  const versionMs = async (p: PluginUnderTest) => {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) samples.push((await invoke(ns, p, versionEnv, '{"cniVersion":"1.0.0"}')).ms);
    return summarize(samples);
  };
  const warmPlugin = list.find((p) => p.key === 'flatnet');
  const coldPlugin = list.find((p) => p.key === 'flatnet-cold');
  const warmVersion = warmPlugin ? await versionMs(warmPlugin) : undefined;
  const coldVersion = coldPlugin ? await versionMs(coldPlugin) : undefined;
  if (warmVersion) log(`bench: flatnet-cni VERSION through the warm server p50 ${warmVersion.p50.toFixed(1)} ms`);

  // Warm-up: creates the bridges and warms page cache; not recorded.
  for (let i = 0; i < opts.warmup; i++) {
    for (const p of list) await podCycle(p, true);
  }
  log(`bench: warm-up done (${opts.warmup} per plugin)`);

  // Concurrency 1: pods alternate between the plugins, ABBA, so drift hits both the same.
  const seq = new Map<PluginKey, { add: number[]; del: number[] }>(list.map((p) => [p.key, { add: [], del: [] }]));
  for (let i = 0; i < opts.seqPods; i++) {
    const order = i % 2 === 0 ? list : [...list].reverse();
    for (const p of order) {
      const r = await podCycle(p, opts.verify);
      seq.get(p.key)!.add.push(r.add);
      seq.get(p.key)!.del.push(r.del);
    }
  }
  log(`bench: concurrency 1 done (${opts.seqPods} pods per plugin)`);

  // Concurrency C: per round and plugin, ADD all pods with C in flight, check, DEL all, drop netns.
  const par = new Map<PluginKey, { addWall: number[]; delWall: number[]; add: number[]; del: number[] }>(
    list.map((p) => [p.key, { addWall: [], delWall: [], add: [], del: [] }]));
  for (let r = 0; r < opts.rounds; r++) {
    const order = r % 2 === 0 ? list : [...list].reverse();
    for (const p of order) {
      const acc = par.get(p.key)!;
      const pods = await makePods(opts.parPods);
      await sleep(100); // let netns creation settle out of the timed window
      const cpu0 = busyCpuMs();
      acc.addWall.push(await pool(pods, opts.concurrency, async (pod) => { acc.add.push(await add(ns, p, pod)); }));
      const addCpu = (busyCpuMs() - cpu0) / pods.length;
      if (opts.verify) await pool(pods, opts.concurrency, (pod) => verifyAdded(p, pod));
      acc.delWall.push(await pool(pods, opts.concurrency, async (pod) => { acc.del.push(await del(ns, p, pod)); }));
      if (opts.verify) await pool(pods, opts.concurrency, (pod) => verifyDeleted(p, pod));
      await ns.remove(pods.map((x) => x.netns));
      await sleep(300); // the kernel tears namespaces down asynchronously; keep that out of the next phase
      log(`bench: concurrency ${opts.concurrency} round ${r + 1} ${p.label}: ADD ${opts.parPods} pods in ` +
        `${(acc.addWall.at(-1)! / 1000).toFixed(3)} s (${addCpu.toFixed(1)} ms of CPU per ADD, all processes), DEL in ${(acc.delWall.at(-1)! / 1000).toFixed(3)} s`);
    }
  }

  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const reports: PluginReport[] = list.map((p) => {
    const s = seq.get(p.key)!;
    const c = par.get(p.key)!;
    const pods = opts.parPods * opts.rounds;
    return {
      key: p.key, label: p.label, exe: p.exe,
      seq: { add: summarize(s.add), del: summarize(s.del) },
      par: {
        concurrency: opts.concurrency, rounds: opts.rounds, podsPerRound: opts.parPods,
        addWallMs: c.addWall, delWallMs: c.delWall,
        addPodsPerSec: pods / (sum(c.addWall) / 1000),
        delPodsPerSec: pods / (sum(c.delWall) / 1000),
        add: summarize(c.add), del: summarize(c.del),
      },
    };
  });

  const ref = reports.find((r) => r.key === 'reference');
  const ratiosOf = (key: PluginKey): Ratios | null => {
    const fn = reports.find((r) => r.key === key);
    return ref && fn ? {
      addP50: fn.seq.add.p50 / ref.seq.add.p50,
      delP50: fn.seq.del.p50 / ref.seq.del.p50,
      podsPerSec: fn.par.addPodsPerSec / ref.par.addPodsPerSec,
    } : null;
  };
  // The targets are the warm path's: that is what a node with its agent runs.
  const ratios = ratiosOf('flatnet');
  const ratiosCold = ratiosOf('flatnet-cold');
  const targets = ratios ? [
    { name: 'ADD p50', measure: 'flatnet/reference', op: '<=', target: 1.0, ratio: ratios.addP50, met: ratios.addP50 <= 1.0 },
    { name: 'DEL p50', measure: 'flatnet/reference', op: '<=', target: 1.0, ratio: ratios.delP50, met: ratios.delP50 <= 1.0 },
    { name: `pods/s at c${opts.concurrency}`, measure: 'flatnet/reference', op: '>=', target: 1.5, ratio: ratios.podsPerSec, met: ratios.podsPerSec >= 1.5 },
  ] : [];

  if (warm) await stopWarmServer(warm.child);
  const left = ns.cleanupSync();
  if (left.length) throw new Error(`namespaces left behind: ${left.join(' ')}`);

  const context = {
    loadAvg1: { start: loadStart, end: loadavg()[0] },
    nodeStartupMinimalEnv: nodeMinimal,
    nodeStartupShellEnv: nodeShell,
    nsenterTrue,
    warmVersion,
    coldVersion,
  };
  if (opts.json) {
    const rs = (s: Summary) => ({ ...s, p50: round(s.p50), p95: round(s.p95), mean: round(s.mean), min: round(s.min), max: round(s.max) });
    process.stdout.write(JSON.stringify({
      run: ns.prefix.replace(/-$/, ''),
      machine: { node: process.version, kernel: release(), cpus: cpus().length },
      options: { ...opts },
      context: {
        loadAvg1: { start: round(context.loadAvg1.start), end: round(context.loadAvg1.end) },
        nodeStartupMinimalEnv: rs(context.nodeStartupMinimalEnv),
        nodeStartupShellEnv: rs(context.nodeStartupShellEnv),
        nsenterTrue: rs(context.nsenterTrue),
        versionWarm: context.warmVersion && rs(context.warmVersion),
        versionCold: context.coldVersion && rs(context.coldVersion),
      },
      plugins: reports.map((r) => ({
        ...r,
        seq: { add: rs(r.seq.add), del: rs(r.seq.del) },
        par: {
          ...r.par, add: rs(r.par.add), del: rs(r.par.del),
          addWallMs: r.par.addWallMs.map((x) => round(x)), delWallMs: r.par.delWallMs.map((x) => round(x)),
          addPodsPerSec: round(r.par.addPodsPerSec, 1), delPodsPerSec: round(r.par.delPodsPerSec, 1),
        },
      })),
      ratios: ratios && { addP50: round(ratios.addP50, 3), delP50: round(ratios.delP50, 3), podsPerSec: round(ratios.podsPerSec, 3) },
      ratiosCold: ratiosCold && { addP50: round(ratiosCold.addP50, 3), delP50: round(ratiosCold.delP50, 3), podsPerSec: round(ratiosCold.podsPerSec, 3) },
      targets: targets.map((t) => ({ ...t, ratio: round(t.ratio, 3) })),
      leftoverNetns: left,
    }, null, 2) + '\n');
  } else {
    printTable(opts, reports, { warm: ratios, cold: ratiosCold }, targets, context, left);
  }
  return opts.check && targets.some((t) => !t.met) ? 3 : 0;
}

interface Ratios { addP50: number; delP50: number; podsPerSec: number }

function printTable(
  opts: Options, reports: PluginReport[],
  ratios: { warm: Ratios | null; cold: Ratios | null },
  targets: Array<{ name: string; op: string; target: number; ratio: number; met: boolean }>,
  context: {
    loadAvg1: { start: number; end: number }; nodeStartupMinimalEnv: Summary; nodeStartupShellEnv: Summary; nsenterTrue: Summary;
    warmVersion?: Summary; coldVersion?: Summary;
  },
  left: string[],
): void {
  const c = opts.concurrency;
  const f1 = (x: number) => x.toFixed(1);
  const lines: string[] = [];
  lines.push('');
  lines.push(`CNI bench  node ${process.version}, kernel ${release()}, ${cpus().length} CPUs, run ${ns.prefix.replace(/-$/, '')}`);
  lines.push(`  concurrency 1: ${opts.seqPods} pods per plugin (ADD then DEL each, plugins alternating); ` +
    `concurrency ${c}: ${opts.parPods} pods × ${opts.rounds} round(s) per plugin; warm-up ${opts.warmup}`);
  lines.push(`  context: node -e 0 p50 ${f1(context.nodeStartupMinimalEnv.p50)} ms with env PATH only ` +
    `(${f1(context.nodeStartupShellEnv.p50)} ms with this shell's env); ` +
    `nsenter --net=… true p50 ${f1(context.nsenterTrue.p50)} ms; ` +
    `1-min load average ${context.loadAvg1.start.toFixed(1)} at start, ${context.loadAvg1.end.toFixed(1)} at end`);
  if (context.warmVersion || context.coldVersion) {
    lines.push(`  flatnet-cni VERSION p50 (fixed cost of a call): ` +
      [context.warmVersion && `${f1(context.warmVersion.p50)} ms warm (shim + server)`,
        context.coldVersion && `${f1(context.coldVersion.p50)} ms cold (shim + Node plugin)`].filter(Boolean).join(', '));
  }
  lines.push('');
  const head = ['', 'ADD p50', 'ADD p95', 'DEL p50', 'DEL p95', `c${c} ADD pods/s`, `c${c} DEL pods/s`, `c${c} ADD p50`, `c${c} DEL p50`];
  const rows: string[][] = reports.map((r) => [
    r.label, f1(r.seq.add.p50), f1(r.seq.add.p95), f1(r.seq.del.p50), f1(r.seq.del.p95),
    f1(r.par.addPodsPerSec), f1(r.par.delPodsPerSec), f1(r.par.add.p50), f1(r.par.del.p50),
  ]);
  for (const [which, r] of [['warm', ratios.warm], ['cold', ratios.cold]] as const) {
    if (!r) continue;
    rows.push([`flatnet ${which} / reference`, `${r.addP50.toFixed(2)}×`, '', `${r.delP50.toFixed(2)}×`, '',
      `${r.podsPerSec.toFixed(2)}×`, '', '', '']);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) => cells.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  lines.push(fmt(head));
  lines.push(fmt(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) lines.push(fmt(r));
  lines.push('  (latencies in ms, wall time from spawn to exit of `nsenter --net=<node> <plugin>`; ' +
    `pods/s = pods / wall time of the whole batch with ${c} in flight)`);
  for (const r of reports) {
    lines.push(`  ${r.label}: c${c} ADD wall per round ${r.par.addWallMs.map((x) => (x / 1000).toFixed(3) + ' s').join(', ')}; ` +
      `DEL ${r.par.delWallMs.map((x) => (x / 1000).toFixed(3) + ' s').join(', ')}`);
  }
  lines.push('');
  if (targets.length) {
    lines.push('targets (flatnet warm / reference)');
    for (const t of targets) {
      lines.push(`  ${t.name.padEnd(14)} ${t.op === '<=' ? '≤' : '≥'} ${t.target.toFixed(1)}×   ` +
        `${t.ratio.toFixed(2)}×   ${t.met ? 'met' : 'NOT met'}`);
    }
  } else {
    lines.push(`targets: not evaluated (they need the reference and flatnet warm${opts.only ? `; --only ${opts.only}` : ''})`);
  }
  lines.push(`namespaces left with prefix ${ns.prefix}: ${left.length ? left.join(' ') : 'none'}`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n`);
    } else {
      process.stderr.write(`bench: FAILED\n${err instanceof Error ? (err instanceof PluginCallError ? err.message : err.stack) : String(err)}\n`);
    }
    const left = ns.cleanupSync();
    if (left.length) process.stderr.write(`bench: namespaces left behind: ${left.join(' ')}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);

