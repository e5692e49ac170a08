// The DaemonSet in deploy/flatnet.yaml runs `flatnet agent` with these exact args: they must parse, through
// the CLI's own parser, into a kubernetes-mode agent (a flag typo would only show on a real cluster).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { parse } from '../../src/cli/options.js';
import { agentCommandOptions } from '../../src/cli/agent-args.js';
import { UsageError } from '../../src/cli/usage.js';
import { readConfigFile } from '../../src/agent/datastore.js';
import { networkAvailablePatch } from '../../src/kube/agent-datastore.js';

function repoFile(rel: string): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, rel))) return join(d, rel);
  }
  return join(process.cwd(), rel);
}
const docs = parseAllDocuments(readFileSync(repoFile('deploy/flatnet.yaml'), 'utf8')).map((d) => d.toJS());
const daemonSet = docs.find((d) => d?.kind === 'DaemonSet');
const agent = daemonSet.spec.template.spec.containers.find((c: any) => c.name === 'agent');
const netConf: string = docs.find((d) => d?.kind === 'ConfigMap').data['net-conf.json'];

/** What the kubelet does to args: $(VAR) from the container's env. */
const expand = (args: string[], env: Record<string, string>) => args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, v: string) => env[v] ?? `$(${v})`));

test("the DaemonSet's agent args parse into a kubernetes-mode agent", async () => {
  assert.deepEqual(agent.command.slice(-1), ['agent']);
  const env = { NODE_NAME: 'worker-1' };
  const { values, positionals } = parse(['agent', ...expand(agent.args, env)]);
  assert.deepEqual(positionals, ['agent']);
  const { runtime, options } = await agentCommandOptions(values, env);
  assert.equal(runtime, 'none');
  assert.deepEqual({ ...options, features: undefined }, {
    datastore: 'kubernetes', node: 'worker-1', nodeDir: '/run/flatnet/node', iface: undefined, nodeIP: undefined,
    heartbeatTtlSeconds: undefined, features: undefined, healthListen: '127.0.0.1:9470',
    kubeconfig: undefined, config: '/etc/flatnet/net-conf.json',
  });
  // kubeadm keeps kube-proxy, so the manifest turns flatnet's proxy off, and nothing else.
  assert.deepEqual(options.features, { proxy: false });
  // Mounted where --config points: the ConfigMap's volume at /etc/flatnet.
  const mount = agent.volumeMounts.find((m: any) => m.name === 'config');
  assert.equal(join(mount.mountPath, 'net-conf.json'), options.config);
});

test('the node name comes from $NODE_NAME when --node is absent', async () => {
  const { values } = parse(['agent', '--datastore=kubernetes', '--config=/c.json', '--node-dir=/d']);
  assert.equal((await agentCommandOptions(values, { NODE_NAME: 'from-env' })).options.node, 'from-env');
  await assert.rejects(agentCommandOptions(values, {}), /--node \(or \$NODE_NAME\)/);
});

test('each datastore names the flags it needs; the lab kubelet needs etcd', async () => {
  const fails = async (args: string[], message: RegExp) => {
    const { values } = parse(['agent', ...args]);
    await assert.rejects(agentCommandOptions(values, {}), (err: Error) => err instanceof UsageError && message.test(err.message));
  };
  await fails(['--node=n', '--node-dir=/d'], /--datastore etcd needs --etcd/);
  await fails(['--datastore=kubernetes', '--node=n', '--node-dir=/d'], /needs --config FILE/);
  await fails(['--datastore=consul', '--node=n', '--node-dir=/d'], /--datastore "consul": expected etcd or kubernetes/);
  await fails(['--datastore=kubernetes', '--config=/c', '--node=n', '--node-dir=/d', '--pod-runtime=lab'], /--pod-runtime lab with --datastore kubernetes needs --etcd/);
  const { values } = parse(['agent', '--etcd=http://e', '--node=n', '--node-dir=/d']);
  assert.deepEqual((await agentCommandOptions(values, {})).options.etcd, 'http://e');
});

test("--config: the ConfigMap's net-conf.json reads as the cluster config; a bad field is named with its value", () => {
  const dir = mkdtempSync(join(tmpdir(), 'fnt-netconf-'));
  try {
    const file = join(dir, 'net-conf.json');
    writeFileSync(file, netConf);
    const c = readConfigFile(file);
    assert.deepEqual([c.clusterCIDRs, c.backend, c.mtu, c.serviceCIDR], [['10.244.0.0/16'], 'auto', 0, '10.96.0.0/12']);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(netConf), mtu: 'big' }));
    assert.throws(() => readConfigFile(file), /--config .*net-conf\.json: cluster config: mtu "big": expected 0 \(follow the interface\) or 68\.\.65535/);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(netConf), backend: 'udp' }));
    assert.throws(() => readConfigFile(file), /backend "udp": expected host-gw, vxlan or auto/);
    assert.throws(() => readConfigFile(join(dir, 'missing.json')), /--config .*missing\.json: ENOENT/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the NetworkUnavailable patch sets that one condition and nothing else', () => {
  const patch = networkAvailablePatch(new Date('2026-12-06T20:00:00.123Z')) as any;
  assert.deepEqual(Object.keys(patch), ['status']);
  assert.deepEqual(Object.keys(patch.status), ['conditions']);
  assert.deepEqual(patch.status.conditions, [{
    type: 'NetworkUnavailable', status: 'False', reason: 'FlatnetIsUp', message: 'flatnet is running on this node',
    lastTransitionTime: '2026-12-06T20:00:00Z', lastHeartbeatTime: '2026-12-06T20:00:00Z',
  }]);
});
