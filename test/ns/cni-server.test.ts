// flatnet-cni's C shim and the warm server (src/cni/server.ts): the shim hands requests to the
// server of its netns, answers as the Node plugin does, and falls back to the Node plugin when no
// server listens. Every server runs inside a netns of this test and is ended by pid.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope, netnsPath, inNetns } from '../helpers/scope.js';
import { callPlugin, flatnetConf, FLATNET_CNI, type PluginAnswer } from '../helpers/plugin.js';
import { CNI_SOCKET_DIR } from '../../src/cni/server.js';
import { warmServers, type RunningServer } from '../helpers/warm-server.js';

const scope = new TestScope('srv');
after(() => scope.cleanupSync());

const servers = warmServers(scope);
const LONE_SHIM = servers.loneShim;
const startServer = (node: string): Promise<RunningServer> => servers.start(node);

function stopServer(s: RunningServer, signal: NodeJS.Signals): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    s.child.once('exit', (code, sig) => resolve({ code, signal: sig }));
    process.kill(s.child.pid!, signal);
  });
}

let seq = 0;
function newNode() {
  const id = ++seq;
  const node = scope.netns(`n${id}`);
  const conf = flatnetConf({ subnet: '10.78.0.0/24', dataDir: join(scope.dir, `ipam${id}`), bridge: 'cni0' });
  const call = (command: string, containerId: string, pod: string | undefined, plugin = FLATNET_CNI, config: unknown = conf) =>
    callPlugin({ command, containerId, netns: pod === undefined ? '' : netnsPath(pod), ifname: 'eth0', nodeNetns: node, plugin }, config);
  return { node, conf, call, pod: (name: string) => scope.netns(`n${id}${name}`) };
}

/** A result without what differs between two ADDs of the same pod in two nodes: random MACs, the netns path. */
function normalized(r: PluginAnswer): unknown {
  return JSON.parse(r.stdout, (k, v) => (k === 'mac' || k === 'sandbox' ? '<x>' : v));
}

test('through the server the shim answers ADD, DEL, VERSION and errors as the Node plugin does', async () => {
  const warm = newNode();
  const cold = newNode();
  await startServer(warm.node);
  const [pw, pc] = [warm.pod('p'), cold.pod('p')];

  const viaServer = await warm.call('ADD', 'same', pw, LONE_SHIM);
  const viaNode = await cold.call('ADD', 'same', pc);
  assert.equal(viaServer.code, 0, viaServer.stdout + viaServer.stderr);
  assert.equal(viaNode.code, 0, viaNode.stdout + viaNode.stderr);
  assert.deepEqual(normalized(viaServer), normalized(viaNode));
  assert.ok(viaServer.stdout.endsWith('}\n'), 'stdout ends as the Node plugin prints it');
  const addr = JSON.parse(inNetns(pw, 'ip', ['-j', 'addr', 'show', 'dev', 'eth0']))[0];
  assert.ok(addr.addr_info.some((x: any) => `${x.local}/${x.prefixlen}` === viaServer.json.ips[0].address));

  // Without a server, the lone shim has nothing to run: the fallback in cold was the Node plugin.
  const lone = await cold.call('VERSION', 'x', undefined, LONE_SHIM);
  assert.equal(lone.code, 1);
  assert.match(lone.json.msg, /flatnet-cni-node cannot run/);

  const same = async (command: string, config: unknown, containerId = 'same') => {
    const a = await warm.call(command, containerId, command === 'VERSION' ? undefined : pw, LONE_SHIM, config);
    const b = await cold.call(command, containerId, command === 'VERSION' ? undefined : pc, FLATNET_CNI, config);
    assert.deepEqual({ code: a.code, stdout: a.stdout }, { code: b.code, stdout: b.stdout }, `${command} ${JSON.stringify(config)}`);
    return a;
  };
  await same('VERSION', { cniVersion: '0.4.0' });
  await same('VERSION', '');
  assert.equal((await same('ADD', { ...warm.conf, ipam: undefined }, 'bad')).code, 1, 'a config error answers the same');
  assert.equal((await same('ADD', 'not json', 'bad')).code, 1);
  const del = await same('DEL', warm.conf);
  assert.equal(del.code, 0);
  assert.equal(del.stdout, '');
  assert.throws(() => inNetns(pw, 'ip', ['link', 'show', 'eth0']));
});

test('the socket is named by the netns inode, mode 0600 in a 0700 directory, and gone after close', async () => {
  const n = newNode();
  const s = await startServer(n.node);
  assert.equal(s.socketPath, `${CNI_SOCKET_DIR}/net-${statSync(netnsPath(n.node)).ino}.sock`);
  const st = statSync(s.socketPath);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(statSync(CNI_SOCKET_DIR).mode & 0o777, 0o700);
  assert.deepEqual(await stopServer(s, 'SIGTERM'), { code: 0, signal: null }, 'the server closes on SIGTERM');
  assert.ok(!existsSync(s.socketPath), 'close() removes the socket');
});

test('concurrent ADDs through one server get distinct addresses; concurrent DELs free them all', async () => {
  const n = newNode();
  await startServer(n.node);
  const pods = Array.from({ length: 12 }, (_, i) => n.pod(`c${i}`));
  const adds = await Promise.all(pods.map((p, i) => n.call('ADD', `conc${i}`, p, LONE_SHIM)));
  for (const r of adds) assert.equal(r.code, 0, r.stdout);
  const ips = adds.map((r) => r.json.ips[0].address as string);
  assert.equal(new Set(ips).size, pods.length, ips.join(' '));
  const dels = await Promise.all(pods.map((p, i) => n.call('DEL', `conc${i}`, p, LONE_SHIM)));
  for (const r of dels) assert.equal(r.code, 0, r.stdout);
  const dir = join((n.conf.ipam as { dataDir: string }).dataDir, 'pods');
  assert.deepEqual(readdirSync(dir).filter((f) => /^\d/.test(f) || f === 'lock'), []);
});

test('a killed server leaves a stale socket: the next call falls back, and a new server takes the path over', async () => {
  const n = newNode();
  const s = await startServer(n.node);
  const p = n.pod('k');
  assert.equal((await n.call('ADD', 'k1', p, LONE_SHIM)).code, 0);
  await stopServer(s, 'SIGKILL');
  assert.ok(existsSync(s.socketPath), 'SIGKILL leaves the socket file');
  const lone = await n.call('DEL', 'k1', p, LONE_SHIM);
  assert.equal(lone.code, 1, 'a refused socket is not an answer');
  const fallback = await n.call('DEL', 'k1', p);
  assert.equal(fallback.code, 0, fallback.stdout + fallback.stderr);
  assert.throws(() => inNetns(p, 'ip', ['link', 'show', 'eth0']));

  const again = await startServer(n.node);
  assert.equal(again.socketPath, s.socketPath);
  const r = await n.call('ADD', 'k2', p, LONE_SHIM);
  assert.equal(r.code, 0, r.stdout);
  await stopServer(again, 'SIGTERM');
});

test('a server that dies after the request was sent: code 11 (try again later), no second try by the Node plugin', async () => {
  const n = newNode();
  const path = `${CNI_SOCKET_DIR}/net-${statSync(netnsPath(n.node)).ino}.sock`;
  const dying = join(scope.dir, 'dying.mjs');
  // Reads the request, then drops the connection without an answer, as an agent killed mid-ADD would.
  writeFileSync(dying, `
import { createServer } from 'node:net';
import { mkdirSync, unlinkSync } from 'node:fs';
mkdirSync('${CNI_SOCKET_DIR}', { recursive: true, mode: 0o700 });
try { unlinkSync(process.argv[2]); } catch {}
createServer({ allowHalfOpen: true }, (s) => s.on('end', () => s.destroy()).resume()).listen(process.argv[2], () => process.stdout.write('ready\\n'));
`);
  const child = spawn('nsenter', [`--net=${netnsPath(n.node)}`, process.execPath, dying, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  scope.adoptProcess(child);
  scope.onCleanup(() => { try { unlinkSync(path); } catch { /* gone */ } });
  await new Promise((resolve) => child.stdout!.once('data', resolve));
  const r = await n.call('ADD', 'd1', n.pod('d'));
  assert.equal(r.code, 1);
  assert.equal(r.json.code, 11, r.stdout);
  assert.match(r.json.msg, /^flatnet-cni: agent connection failed: /);
  await new Promise((resolve) => { child.once('exit', resolve); process.kill(child.pid!, 'SIGKILL'); });
});

/** A hooks module for the server: records each call as a JSON line; fails an ADD whose CNI_ARGS asks it to. */
function hooksModule(): { module: string; log: string; records: () => any[] } {
  const log = join(scope.dir, `hooks${++seq}.log`);
  const module = join(scope.dir, `hooks${seq}.mjs`);
  writeFileSync(module, `
import { appendFileSync } from 'node:fs';
export const hooks = {
  async afterAdd(env, result) {
    if ((env.CNI_ARGS ?? '').includes('FAIL_HOOK=1')) throw new Error('policy table unreachable');
    appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: 'afterAdd', id: env.CNI_CONTAINERID, args: env.CNI_ARGS, ips: result.ips.map((i) => i.address) }) + '\\n');
  },
  async afterDel(env) {
    appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: 'afterDel', id: env.CNI_CONTAINERID }) + '\\n');
  },
};
`);
  return { module, log, records: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []) };
}

const links = (ns: string): string[] => (JSON.parse(inNetns(ns, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname).sort();

test('hooks: afterAdd runs in the server with the request env and the result before ADD answers; afterDel after DEL', async () => {
  const n = newNode();
  const h = hooksModule();
  await servers.start(n.node, { hooksModule: h.module });
  const p = n.pod('h');
  const add = await callPlugin({ command: 'ADD', containerId: 'hk1', netns: netnsPath(p), ifname: 'eth0', args: 'K8S_POD_NAMESPACE=web;K8S_POD_NAME=a', nodeNetns: n.node, plugin: LONE_SHIM }, n.conf);
  assert.equal(add.code, 0, add.stdout);
  // Recorded before the answer came back: the record is there the moment ADD returned.
  assert.deepEqual(h.records(), [{ hook: 'afterAdd', id: 'hk1', args: 'K8S_POD_NAMESPACE=web;K8S_POD_NAME=a', ips: [add.json.ips[0].address] }]);
  const del = await n.call('DEL', 'hk1', p, LONE_SHIM);
  assert.equal(del.code, 0, del.stdout);
  assert.deepEqual(h.records().map((r) => `${r.hook} ${r.id}`), ['afterAdd hk1', 'afterDel hk1']);
});

test('hooks: an afterAdd that throws fails the ADD with code 999 and its message, and the ADD is undone', async () => {
  const n = newNode();
  const h = hooksModule();
  await servers.start(n.node, { hooksModule: h.module });
  const p = n.pod('f');
  const nodeBefore = links(n.node);
  const r = await callPlugin({ command: 'ADD', containerId: 'hk2', netns: netnsPath(p), ifname: 'eth0', args: 'FAIL_HOOK=1', nodeNetns: n.node, plugin: LONE_SHIM }, n.conf);
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.json.code, 999);
  assert.match(r.json.msg, /after ADD: policy table unreachable/);
  assert.deepEqual(h.records(), []);
  // No host veth (the bridge may stay: it is the node's, not this ADD's), no pod eth0, no reservation.
  assert.deepEqual(links(n.node).filter((l) => l.startsWith('fn') || l.startsWith('veth')), nodeBefore.filter((l) => l.startsWith('fn') || l.startsWith('veth')));
  assert.deepEqual(links(p), ['lo']);
  const dir = join((n.conf.ipam as { dataDir: string }).dataDir, 'pods');
  assert.deepEqual(existsSync(dir) ? readdirSync(dir).filter((f) => /^\d/.test(f)) : [], []);
  // Without the failing argument the same pod is added: nothing of the failed ADD stood in its way.
  const ok = await callPlugin({ command: 'ADD', containerId: 'hk2', netns: netnsPath(p), ifname: 'eth0', nodeNetns: n.node, plugin: LONE_SHIM }, n.conf);
  assert.equal(ok.code, 0, ok.stdout);
  assert.deepEqual(readdirSync(dir).filter((f) => /^\d/.test(f)), [ok.json.ips[0].address.split('/')[0]]);
});
