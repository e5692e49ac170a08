// `flatnet agent --disable`: a feature turned off removes its own table at start, the others run. One
// agent in a netns of this test, against a throwaway etcd on a unix socket, ended by pid.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestScope, inNetns, netnsPath } from '../helpers/scope.js';
import { startEtcd } from '../helpers/etcd.js';
import { CLI } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { EtcdStore } from '../../src/store/etcd.js';
import { CLUSTER_CONFIG_KEY, objectKey } from '../../src/api/keys.js';
import { DEFAULT_CLUSTER_CONFIG, type Node } from '../../src/api/types.js';

const scope = new TestScope('agf');
after(() => scope.cleanupSync());

const hasTable = (ns: string, family: string, name: string): boolean =>
  spawnSync('nsenter', [`--net=${netnsPath(ns)}`, 'nft', 'list', 'table', family, name], { stdio: 'ignore' }).status === 0;

test('flatnet agent --disable proxy: the proxy table a previous run left is removed; guard, masquerade and routes run', async () => {
  const etcd = await startEtcd(scope);
  const store = new EtcdStore({ endpoints: etcd.endpoint });
  after(() => store.close());
  const ns = scope.netns('n1');
  inNetns(ns, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
  inNetns(ns, 'ip', ['link', 'set', 'eth0p', 'up']);
  inNetns(ns, 'ip', ['addr', 'add', '192.168.77.2/24', 'dev', 'eth0']);
  inNetns(ns, 'ip', ['link', 'set', 'eth0', 'up']);
  // What an agent with the proxy on left behind.
  inNetns(ns, 'nft', ['-f', '-'], 'table ip flatnet-proxy {\n\tchain services {\n\t}\n}\n');
  assert.ok(hasTable(ns, 'ip', 'flatnet-proxy'));
  await store.put(CLUSTER_CONFIG_KEY, JSON.stringify({ ...DEFAULT_CLUSTER_CONFIG, backend: 'host-gw' }));
  // The Node as the controller left it: its pod CIDR already assigned (registration keeps spec).
  const node: Node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] } } as Node;
  await store.put(objectKey('Node', 'n1'), JSON.stringify(node));

  const nodeDir = join(scope.dir, 'n1');
  const child = spawn('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, CLI, 'agent', '--etcd', etcd.endpoint, '--node', 'n1',
    '--node-dir', nodeDir, '--iface', 'eth0', '--disable', 'proxy'], { stdio: ['ignore', 'pipe', 'pipe'] });
  scope.adoptProcess(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b; });
  child.stderr!.on('data', (b: Buffer) => { out += b; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until('the agent to say ready', () => / ready$/m.test(out) || child.exitCode !== null, 20_000);
  assert.match(out, / ready$/m, out);
  assert.match(out, /proxy: turned off, its kernel state removed/, out);
  assert.ok(!hasTable(ns, 'ip', 'flatnet-proxy'), 'the proxy table is gone');
  assert.ok(hasTable(ns, 'inet', 'flatnet-guard'), 'the guard runs (pods wait for it)');
  await until('the masquerade table', () => hasTable(ns, 'ip', 'flatnet-masq'));
  // The probes a DaemonSet would run, inside the node's namespace.
  const get = (path: string) => spawnSync('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, '-e',
    `fetch('http://127.0.0.1:9470${path}').then(async (r) => { console.log(r.status, (await r.text()).trim()); })`], { encoding: 'utf8' }).stdout.trim();
  assert.equal(get('/healthz'), '200 ok');
  assert.match(await until('/readyz to answer 200', () => { const r = get('/readyz'); return r.startsWith('200') && r; }), /^200 ready: guard, routes, masquerade, policy in sync$/);

  process.kill(child.pid!, 'SIGTERM');
  assert.equal(await exited, 0, out);
});

test('flatnet agent --disable with a feature that cannot be turned off is a usage error naming the ones that can', async () => {
  const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'agent', '--etcd', 'unix:///nowhere', '--node', 'x', '--node-dir', join(scope.dir, 'x'), '--disable', 'routes'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { err += b; });
    child.on('close', (code) => resolve({ code, err }));
  });
  assert.equal(r.code, 2);
  assert.match(r.err, /--disable: cannot disable "routes": the features that can be turned off are proxy, masquerade, policy/);
});
