// bench/datapath: iperf3 TCP throughput in one run — a raw veth pair (the underlay limit), pod↔pod on
// one node, and pod↔pod across nodes with host-gw and with vxlan — each as a ratio to the underlay.
// Also counts IP fragments created on the nodes during each run: a right pod MTU makes none.
//
// Usage: node dist/bench/datapath/run.js [--seconds N] [--rounds N] [--gro on|off] [--json]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterLab } from '../../src/lab/cluster.js';
import type { LabCluster } from '../../src/lab/cluster-file.js';
import { applyObjects } from '../../src/api/apply.js';
import { parseManifests } from '../../src/api/manifest.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import type { Pod } from '../../src/api/types.js';

const { values } = parseArgs({ options: {
  seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '5' }, gro: { type: 'string', default: 'off' },
  json: { type: 'boolean', default: false },
} });
const seconds = Number(values.seconds);
// Two cores run client, server and every softirq: single runs vary by ±10%, so each figure is a median.
const rounds = Number(values.rounds);
// GRO on the node-network links (as real NICs have it) or off (veth's default, the lab's): measured
// here, neither changed the ratios beyond the run-to-run noise.
const gro = values.gro === 'on';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const say = (m: string) => process.stderr.write(m + '\n');
const prefix = `fnd${randomBytes(3).toString('hex')}`;
const root = mkdtempSync(join(tmpdir(), `${prefix}-`));
const netnses: string[] = [];
const servers: ChildProcess[] = [];
const labs: ClusterLab[] = [];

async function cleanup(): Promise<void> {
  for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
  for (const l of labs) await l.down().catch(() => undefined);
  for (const ns of netnses) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ } }
  rmSync(root, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { void cleanup().then(() => process.exit(130)); });

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Starts `iperf3 -s` in a namespace; resolves when it listens. */
async function iperfServer(netns: string): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, 'iperf3', '-s', '-1', '-p', '5201', '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('Server listening')) resolve(); });
    child.once('exit', (c) => reject(new Error(`iperf3 -s in ${netns} exited ${c}`)));
  });
  return child;
}

/** Runs the client in `netns` against `host`; returns Gbit/s received. */
async function iperfClient(netns: string, host: string): Promise<number> {
  const out = execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'iperf3', '-c', host, '-p', '5201', '-t', String(seconds), '-J'], { encoding: 'utf8' });
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

/** One iperf3 run from `clientNs` to a server started in `serverNs`. */
async function measure(serverNs: string, clientNs: string, host: string): Promise<number> {
  await iperfServer(serverNs);
  return iperfClient(clientNs, host);
}

function fragments(netns: string): number {
  const snmp = execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Ip:'));
  const [names, vals] = snmp.map((l) => l.split(/\s+/));
  return Number(vals[names.indexOf('FragCreates')]);
}

/** Turns GRO on or off on a namespace's link (the lab's node links and the raw pair get the same). */
function setGro(netns: string, dev: string, on: boolean): void {
  execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'ethtool', '-K', dev, 'gro', on ? 'on' : 'off']);
}

/** The underlay limit: two namespaces joined by one veth pair, nothing else on the path. */
function rawPair(): { server: string; client: string; host: string } {
  const a = `${prefix}-ula`, b = `${prefix}-ulb`;
  for (const ns of [a, b]) { ip('netns', 'add', ns); netnses.push(ns); ip('-n', ns, 'link', 'set', 'lo', 'up'); }
  ip('-n', a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b);
  ip('-n', a, 'addr', 'add', '192.168.77.1/24', 'dev', 'eth0');
  ip('-n', b, 'addr', 'add', '192.168.77.2/24', 'dev', 'eth0');
  ip('-n', a, 'link', 'set', 'eth0', 'up');
  ip('-n', b, 'link', 'set', 'eth0', 'up');
  for (const ns of [a, b]) setGro(ns, 'eth0', gro);
  return { server: b, client: a, host: '192.168.77.2' };
}

const POD_YAML = (node: string, name: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default }
spec:
  nodeName: ${node}
  containers: [{ name: main, command: [sleep, infinity] }]
`;

interface LabPaths { sameNode: Path; crossNode: Path; nodeToNode: Path; nodeNetns: string[]; mtu: number }
interface Path { server: string; client: string; host: string }

/** A 2-node lab on one segment with `backend`; pods a1, a2 on node-1 and b1 on node-2. Left up for the rounds. */
async function labUp(backend: LabCluster['backend']): Promise<LabPaths> {
  const lab = new ClusterLab(`${prefix}${backend === 'vxlan' ? 'v' : 'h'}`, join(root, 'labs'));
  labs.push(lab);
  const cluster: LabCluster = {
    apiVersion: 'flatnet.io/v1alpha1', kind: 'LabCluster', backend, clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 24, mtu: 1500,
    segments: [{ name: 'a', subnet: '10.100.0.0/24' }], nodes: [{ name: 'node-1', segment: 'a' }, { name: 'node-2', segment: 'a' }],
    external: { subnet: '203.0.113.0/24' },
  };
  await lab.up(cluster);
  const store = lab.store();
  try {
    await applyObjects(store, parseManifests([POD_YAML('node-1', 'a1'), POD_YAML('node-1', 'a2'), POD_YAML('node-2', 'b1')].join('---\n'), 'bench.yaml'));
    const pods = await waitPodsRunning(store, 3, 30_000);
    const by = (n: string) => pods.find((p) => p.metadata.name === n) as Pod;
    const ns = (p: Pod) => podNetnsName(lab.name, p.metadata.uid!);
    const plan = lab.plan();
    for (const port of plan.ports) setGro(port.netns, port.dev, gro);
    // Read through ip, not /sys: sysfs shows the mount namespace's network namespace, not the pod's.
    const mtu = (JSON.parse(execFileSync('ip', ['-n', ns(by('a1')), '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{ mtu: number }>)[0].mtu;
    return {
      sameNode: { server: ns(by('a2')), client: ns(by('a1')), host: by('a2').status!.podIP! },
      crossNode: { server: ns(by('b1')), client: ns(by('a1')), host: by('b1').status!.podIP! },
      nodeToNode: { server: plan.nodes[1].netns, client: plan.nodes[0].netns, host: plan.nodes[1].ip },
      nodeNetns: plan.nodes.map((n) => n.netns),
      mtu,
    };
  } finally { await store.close(); }
}

async function main(): Promise<number> {
  say(`bench/datapath: iperf3 TCP, ${rounds} rounds of ${seconds} s per path (each round runs every path once), GRO ${gro ? 'on' : 'off'}, prefix ${prefix}`);
  const raw = rawPair();
  const hg = await labUp('host-gw');
  const vx = await labUp('vxlan');
  const fragsOf = (l: LabPaths) => l.nodeNetns.reduce((s, n) => s + fragments(n), 0);
  const fragsBefore = { hg: fragsOf(hg), vx: fragsOf(vx) };
  const runs = { raw: [] as number[], nodes: [] as number[], same: [] as number[], hostGw: [] as number[], vxlan: [] as number[] };
  const ratios = { nodes: [] as number[], same: [] as number[], hostGw: [] as number[], vxlan: [] as number[] };
  // Against the lab's own node network too (two macvlans on one switch): what the pods' packets really cross.
  const perNodes = { hostGw: [] as number[], vxlan: [] as number[] };
  // Rounds interleave the paths, and each path is judged against the underlay of its own round: this
  // machine's speed drifts by more than the differences measured.
  for (let r = 0; r < rounds; r++) {
    const u = await measure(raw.server, raw.client, raw.host);
    const nodes = await measure(hg.nodeToNode.server, hg.nodeToNode.client, hg.nodeToNode.host);
    const same = await measure(hg.sameNode.server, hg.sameNode.client, hg.sameNode.host);
    const hostGw = await measure(hg.crossNode.server, hg.crossNode.client, hg.crossNode.host);
    const vxlan = await measure(vx.crossNode.server, vx.crossNode.client, vx.crossNode.host);
    runs.raw.push(u); runs.nodes.push(nodes); runs.same.push(same); runs.hostGw.push(hostGw); runs.vxlan.push(vxlan);
    ratios.nodes.push(nodes / u); ratios.same.push(same / u); ratios.hostGw.push(hostGw / u); ratios.vxlan.push(vxlan / u);
    perNodes.hostGw.push(hostGw / nodes); perNodes.vxlan.push(vxlan / nodes);
    say(`round ${r + 1}: underlay ${u.toFixed(2)}, node<->node ${nodes.toFixed(2)}, same node ${same.toFixed(2)}, host-gw ${hostGw.toFixed(2)}, vxlan ${vxlan.toFixed(2)} Gbit/s`);
  }
  const frags = { hostGw: fragsOf(hg) - fragsBefore.hg, vxlan: fragsOf(vx) - fragsBefore.vx };
  const ratio = { nodes: median(ratios.nodes), same: median(ratios.same), hostGw: median(ratios.hostGw), vxlan: median(ratios.vxlan) };
  const ratioToNodes = { hostGw: median(perNodes.hostGw), vxlan: median(perNodes.vxlan) };
  const rows = [
    ['raw veth pair (underlay)', median(runs.raw), 1, '', ''],
    ['node<->node over the lab fabric', median(runs.nodes), ratio.nodes, '', 'macvlan to macvlan on the segment\'s switch'],
    ['pod<->pod, same node', median(runs.same), ratio.same, '', `MTU ${hg.mtu}`],
    ['pod<->pod, cross node, host-gw', median(runs.hostGw), ratio.hostGw, '>= 0.90', `MTU ${hg.mtu}, ${frags.hostGw} fragments; ${ratioToNodes.hostGw.toFixed(2)}× node<->node`],
    ['pod<->pod, cross node, vxlan', median(runs.vxlan), ratio.vxlan, '>= 0.70', `MTU ${vx.mtu}, ${frags.vxlan} fragments; ${ratioToNodes.vxlan.toFixed(2)}× node<->node`],
  ] as const;
  const result = {
    seconds, rounds, gro, runs, ratios: ratio, ratiosToNodeNetwork: ratioToNodes, fragments: frags, podMTU: { hostGw: hg.mtu, vxlan: vx.mtu },
    targets: { hostGw: ratio.hostGw >= 0.9, vxlan: ratio.vxlan >= 0.7, noFragments: frags.hostGw === 0 && frags.vxlan === 0 },
  };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`${'path'.padEnd(34)}${'Gbit/s'.padStart(8)}${'ratio'.padStart(8)}  target   notes   (medians of ${rounds} rounds; ratio per round)`);
    for (const [name, g, rt, target, notes] of rows) {
      console.log(`${name.padEnd(34)}${g.toFixed(2).padStart(8)}${rt.toFixed(2).padStart(7)}×  ${target.padEnd(8)} ${notes}`);
    }
    console.log(`targets: host-gw ${result.targets.hostGw ? 'met' : 'NOT met'}, vxlan ${result.targets.vxlan ? 'met' : 'NOT met'}, no fragmentation ${result.targets.noFragments ? 'met' : 'NOT met'}`);
  }
  return 0;
}

main().then(async (code) => { await cleanup(); process.exitCode = code; }, async (err) => { say(`bench failed: ${(err as Error).stack}`); await cleanup(); process.exitCode = 1; });
