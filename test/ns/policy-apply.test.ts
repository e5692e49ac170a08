// The policy table against the real kernel: one node namespace routing for three pod namespaces, the
// node's PolicySync driving real nft and conntrack. Packets decide: an isolated pod's peers are
// dropped, an allowed one connects, a sync with nothing new writes nothing (a restart neither), a
// label change is a few element operations, and an established flow a change denies stops.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { startStream } from '../helpers/stream.js';
import { until } from '../helpers/until.js';
import { Netns } from '../../src/kernel/netns.js';
import { conntrackDelete, conntrackList } from '../../src/kernel/conntrack.js';
import { NftTableApplier } from '../../src/dataplane/nft/applier.js';
import { NetnsNftKernel } from '../../src/dataplane/nft/kernel.js';
import { POLICY_TABLE } from '../../src/dataplane/policy/render.js';
import { PolicySync, type PolicyKernel } from '../../src/dataplane/policy/sync.js';
import { evaluateIn, indexWorld } from '../../src/policy/evaluate.js';
import type { NetworkPolicy, Pod } from '../../src/api/types.js';
import { namespace, pod, policy } from '../helpers/policy-objects.js';

const FLATNET = join(dirname(fileURLToPath(import.meta.url)), '../../bin/flatnet.mjs');
const scope = new TestScope('pol');
after(() => scope.cleanupSync());

const PODS = { xa: '10.244.1.2', xb: '10.244.1.3', ya: '10.244.1.4' };
let nodeNs: string;
const podNs: Record<string, string> = {};

before(async () => {
  nodeNs = scope.netns('node');
  const sh = (ns: string, cmds: string[]) => {
    const r = spawnSync('ip', ['-n', ns, '-batch', '-'], { input: cmds.join('\n') + '\n', encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip -n ${ns}: ${r.stderr}`);
  };
  spawnSync('ip', ['netns', 'exec', nodeNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  for (const [name, ip] of Object.entries(PODS)) {
    const ns = scope.netns(name);
    podNs[name] = ns;
    const host = `${scope.prefix.slice(-6)}${name}`;
    spawnSync('ip', ['link', 'add', host, 'netns', nodeNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh(nodeNs, [`link set ${host} up`, `addr add 10.244.1.1/32 dev ${host}`, `route add ${ip}/32 dev ${host}`]);
    sh(ns, ['link set eth0 up', `addr add ${ip}/32 dev eth0`, 'route add 10.244.1.1/32 dev eth0', 'route add default via 10.244.1.1']);
    // Each pod serves TCP 80 and 81.
    const server = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, FLATNET, 'serve', '--name', name, '--port', '80', '--port', '81'], { stdio: 'ignore' });
    scope.adoptProcess(server);
  }
  await until('the pod servers to listen', () => connects('ya', PODS.xa, 80, 2000));
});

/** One TCP connect from a pod's namespace; true when the server answered. */
function connects(from: string, ip: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('nsenter', [`--net=/run/netns/${podNs[from]}`, process.execPath, FLATNET, 'probe', `${ip}:${port}`, '--timeout', `${timeoutMs}ms`], { stdio: 'ignore' });
    c.on('exit', (code) => resolve(code === 0));
  });
}

interface World { pods: Pod[]; policies: NetworkPolicy[] }

function newSync(world: World): PolicySync {
  const ns = new Netns(`/run/netns/${nodeNs}`);
  const applier = new NftTableApplier(new NetnsNftKernel(ns), 'inet', POLICY_TABLE);
  const kernel: PolicyKernel = {
    sync: (t) => applier.sync(t), forget: () => applier.forget(), cleanup: () => applier.cleanup(),
    listFlows: () => conntrackList(ns), deleteFlow: async (f) => { await conntrackDelete(ns, f.protocol, f.orig); },
  };
  const namespaces = [namespace('x'), namespace('y')];
  return new PolicySync({
    nodeName: 'node-1', ipv6: false, kernel,
    inputs: { pods: () => world.pods, namespaces: () => namespaces, policies: () => world.policies, nodes: () => [] },
    judge: (w) => { const idx = indexWorld(w); return (q) => evaluateIn(idx, q); },
  });
}

const basePods = () => [pod('x', 'a', { ip: PODS.xa }), pod('x', 'b', { ip: PODS.xb }), pod('y', 'a', { ip: PODS.ya })];

test('policy table in a real node: drops, allows, writes nothing twice, and a restart writes nothing', async () => {
  const world: World = { pods: basePods(), policies: [] };
  const sync = newSync(world);
  assert.equal((await sync.sync()).rebuilt, true);
  assert.equal(await connects('ya', PODS.xa, 80), true, 'no policy: every pod reaches every pod');

  // Default deny ingress in x, plus: from namespace y to pod=a on port 80 only.
  world.policies = [
    policy('x', 'deny', {}),
    policy('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }], ports: [{ protocol: 'TCP', port: 80 }] }] }),
  ];
  const r = await sync.sync();
  assert.ok(r.operations > 0);
  const [ya80, ya81, xb80, xaToYa] = await Promise.all([connects('ya', PODS.xa, 80), connects('ya', PODS.xa, 81), connects('xb', PODS.xa, 80), connects('xa', PODS.ya, 80)]);
  assert.deepEqual({ ya80, ya81, xb80, xaToYa }, { ya80: true, ya81: false, xb80: false, xaToYa: true });

  assert.equal((await sync.sync()).operations, 0, 'nothing changed: nothing written');
  assert.equal((await newSync(world).sync()).operations, 0, 'a restarted agent adopts the table and writes nothing');

  // x/b relabelled pod=a: it joins the allowed set of from-y (one map element changes chain).
  world.pods = basePods().map((p) => (p.metadata.namespace === 'x' && p.metadata.name === 'b' ? { ...p, metadata: { ...p.metadata, labels: { pod: 'a' } } } : p));
  const relabel = await sync.sync();
  assert.ok(relabel.operations > 0 && relabel.operations <= 4, `a label change is a few operations, not ${relabel.operations}`);
  assert.equal(await connects('ya', PODS.xb, 80), true);
});

test('an established flow the new state denies is cut at the next sync', async () => {
  const world: World = { pods: basePods(), policies: [] };
  const sync = newSync(world);
  await sync.sync();
  const stream = await startStream(scope, podNs.ya, PODS.xa, 80);
  world.policies = [policy('x', 'deny', {})];
  const r = await sync.sync();
  assert.ok(r.cut >= 1, `the stream's conntrack entry is removed (cut ${r.cut})`);
  await new Promise((res) => setTimeout(res, 1500));
  const result = await stream.stop();
  assert.ok(result.maxGap >= 1000 || result.error, `the stream stopped after the cut (longest gap ${result.maxGap} ms)`);
  world.policies = [];
  await sync.sync();
  assert.equal(await connects('ya', PODS.xa, 80), true, 'the policy gone: new connections pass again');
  await sync.sync().then(() => new NftTableApplier(new NetnsNftKernel(new Netns(`/run/netns/${nodeNs}`)), 'inet', POLICY_TABLE).cleanup());
});
