// bench/datapath: iperf3 TCP throughput in one run — a raw veth pair (the underlay limit), pod↔pod on
// one node, and pod↔pod across nodes with host-gw and with vxlan — each as a ratio to the underlay.
// Also counts IP fragments created on the nodes during each run: a right pod MTU makes none.
//
// Usage: node dist/bench/datapath/run.js [--seconds N] [--repeat N] [--json]
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
  seconds: { type: 'string', default: '5' }, repeat: { type: 'string', default: '3' }, json: { type: 'boolean', default: false },
} });
const seconds = Number(values.seconds);
// Two cores run client, server and every softirq: single runs vary by ±10%, so each figure is a median.
const repeat = Number(values.repeat);
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

async function measure(serverNs: string, clientNs: string, host: string): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < repeat; i++) {
    await iperfServer(serverNs);
    runs.push(await iperfClient(clientNs, host));
  }
  return median(runs);
}

function fragments(netns: string): number {
  const snmp = execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Ip:'));
  const [names, vals] = snmp.map((l) => l.split(/\s+/));
  return Number(vals[names.indexOf('FragCreates')]);
}

async function underlay(): Promise<number> {
  const a = `${prefix}-ula`, b = `${prefix}-ulb`;
  for (const ns of [a, b]) { ip('netns', 'add', ns); netnses.push(ns); ip('-n', ns, 'link', 'set', 'lo', 'up'); }
  ip('-n', a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b);
  ip('-n', a, 'addr', 'add', '192.168.77.1/24', 'dev', 'eth0');
  ip('-n', b, 'addr', 'add', '192.168.77.2/24', 'dev', 'eth0');
  ip('-n', a, 'link', 'set', 'eth0', 'up');
  ip('-n', b, 'link', 'set', 'eth0', 'up');
  // The same link settings as the lab's node network (GRO on, as a real NIC has it).
  for (const ns of [a, b]) execFileSync('nsenter', [`--net=/run/netns/${ns}`, 'ethtool', '-K', 'eth0', 'gro', 'on']);
  return measure(b, a, '192.168.77.2');
}

const POD_YAML = (node: string, name: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default }
spec:
  nodeName: ${node}
  containers: [{ name: main, command: [sleep, infinity] }]
`;

/** A 2-node lab on one segment with `backend`; pods a1, a2 on node-1 and b1 on node-2. */
async function labRun(backend: LabCluster['backend']): Promise<{ sameNode: number; crossNode: number; frags: number; mtu: number }> {
  const lab = new ClusterLab(`${prefix}${backend === 'vxlan' ? 'v' : 'h'}`, join(root, 'labs'));
  labs.push(lab);
  const cluster: LabCluster = {
    apiVersion: 'flatnet.io/v1alpha1', kind: 'LabCluster', backend, clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 24, mtu: 1500,
    segments: [{ name: 'a', subnet: '10.100.0.0/24' }], nodes: [{ name: 'node-1', segment: 'a' }, { name: 'node-2', segment: 'a' }],
    external: { subnet: '203.0.113.0/24' },
  } as LabCluster;
  await lab.up(cluster);
  const store = lab.store();
  try {
    await applyObjects(store, parseManifests([POD_YAML('node-1', 'a1'), POD_YAML('node-1', 'a2'), POD_YAML('node-2', 'b1')].join('---\n'), 'bench.yaml'));
    const pods = await waitPodsRunning(store, 3, 30_000);
    const by = (n: string) => pods.find((p) => p.metadata.name === n) as Pod;
    const ns = (p: Pod) => podNetnsName(lab.name, p.metadata.uid!);
    const plan = lab.plan();
    const nodeNs = plan.nodes.map((n) => n.netns);
    const before = nodeNs.reduce((s, n) => s + fragments(n), 0);
    const sameNode = await measure(ns(by('a2')), ns(by('a1')), by('a2').status!.podIP!);
    const crossNode = await measure(ns(by('b1')), ns(by('a1')), by('b1').status!.podIP!);
    const frags = nodeNs.reduce((s, n) => s + fragments(n), 0) - before;
    // Read through ip, not /sys: sysfs shows the mount namespace's network namespace, not the pod's.
    const mtu = (JSON.parse(execFileSync('ip', ['-n', ns(by('a1')), '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{ mtu: number }>)[0].mtu;
    return { sameNode, crossNode, frags, mtu };
  } finally {
    await store.close();
    await lab.down();
    labs.splice(labs.indexOf(lab), 1);
  }
}

async function main(): Promise<number> {
  say(`bench/datapath: iperf3 TCP, median of ${repeat} runs of ${seconds} s per path, prefix ${prefix}`);
  const raw = await underlay();
  say(`underlay (raw veth pair): ${raw.toFixed(2)} Gbit/s`);
  const hg = await labRun('host-gw');
  say(`host-gw: same node ${hg.sameNode.toFixed(2)}, cross node ${hg.crossNode.toFixed(2)} Gbit/s, pod MTU ${hg.mtu}, fragments ${hg.frags}`);
  await sleep(200);
  const vx = await labRun('vxlan');
  say(`vxlan: same node ${vx.sameNode.toFixed(2)}, cross node ${vx.crossNode.toFixed(2)} Gbit/s, pod MTU ${vx.mtu}, fragments ${vx.frags}`);
  const rows = [
    ['raw veth pair (underlay)', raw, '', ''],
    ['pod<->pod, same node', hg.sameNode, '', `MTU ${hg.mtu}`],
    ['pod<->pod, cross node, host-gw', hg.crossNode, '>= 0.90', `MTU ${hg.mtu}, ${hg.frags} fragments`],
    ['pod<->pod, cross node, vxlan', vx.crossNode, '>= 0.70', `MTU ${vx.mtu}, ${vx.frags} fragments`],
  ] as const;
  const result = {
    seconds, underlayGbps: raw, sameNodeGbps: hg.sameNode, hostGwGbps: hg.crossNode, vxlanGbps: vx.crossNode,
    ratios: { sameNode: hg.sameNode / raw, hostGw: hg.crossNode / raw, vxlan: vx.crossNode / raw },
    fragments: { hostGw: hg.frags, vxlan: vx.frags }, podMTU: { hostGw: hg.mtu, vxlan: vx.mtu },
    targets: { hostGw: hg.crossNode / raw >= 0.9, vxlan: vx.crossNode / raw >= 0.7, noFragments: hg.frags === 0 && vx.frags === 0 },
  };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`${'path'.padEnd(34)}${'Gbit/s'.padStart(8)}${'ratio'.padStart(8)}  target   notes`);
    for (const [name, g, target, notes] of rows) {
      console.log(`${name.padEnd(34)}${g.toFixed(2).padStart(8)}${(g / raw).toFixed(2).padStart(7)}×  ${target.padEnd(8)} ${notes}`);
    }
    console.log(`targets: host-gw ${result.targets.hostGw ? 'met' : 'NOT met'}, vxlan ${result.targets.vxlan ? 'met' : 'NOT met'}, no fragmentation ${result.targets.noFragments ? 'met' : 'NOT met'}`);
  }
  return 0;
}

main().then(async (code) => { await cleanup(); process.exitCode = code; }, async (err) => { say(`bench failed: ${(err as Error).stack}`); await cleanup(); process.exitCode = 1; });
