// The warm CNI path heals itself: each fault a runtime or an operator can cause is answered through
// the agent's server (the C shim alone, no Node plugin beside it), and a normal ADD succeeds after it.
// Every server runs inside a netns of this test and is ended by pid.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope, netnsPath, inNetns } from '../helpers/scope.js';
import { callPlugin, flatnetConf, FLATNET_CNI } from '../helpers/plugin.js';
import { warmServers } from '../helpers/warm-server.js';
import { hostVethName } from '../../src/cni/plan.js';

const scope = new TestScope('heal');
after(() => scope.cleanupSync());
// The shim alone: a call succeeds only through a server, so each answer below is the warm path's.
const servers = warmServers(scope);
const LONE_SHIM = servers.loneShim;
const startServer = (node: string) => servers.start(node);

let seq = 0;
async function warmNode(extra: Record<string, unknown> = {}, serve = true) {
  const id = ++seq;
  const node = scope.netns(`n${id}`);
  const dataDir = join(scope.dir, `ipam${id}`);
  const conf = flatnetConf({ subnet: '10.81.0.0/24', dataDir, bridge: 'cni0', extra });
  if (serve) await startServer(node);
  const plugin = serve ? LONE_SHIM : FLATNET_CNI;
  const call = (command: string, containerId: string, netns: string, config: unknown = conf, args?: string) =>
    callPlugin({ command, containerId, netns, ifname: 'eth0', nodeNetns: node, plugin, args }, config);
  const reservations = () => (existsSync(join(dataDir, 'pods')) ? readdirSync(join(dataDir, 'pods')).filter((f) => /^\d/.test(f)) : []);
  const links = () => (JSON.parse(execFileSync('ip', ['-n', node, '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string; master?: string }>);
  const pod = (name: string) => scope.netns(`n${id}${name}`);
  /** A normal ADD after a fault: it must succeed and leave a pod that holds its address. */
  const normalAdd = async (name: string) => {
    const p = pod(name);
    const r = await call('ADD', name, netnsPath(p));
    assert.equal(r.code, 0, `normal ADD after the fault: ${r.stdout}`);
    assert.match(inNetns(p, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0']), new RegExp(r.json.ips[0].address.split('/')[0].replace(/\./g, '\\.')));
    return { ...r, pod: p };
  };
  return { node, conf, call, reservations, links, pod, normalAdd };
}

const podLinks = (ns: string) => (JSON.parse(inNetns(ns, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);

test('routed: ADD, DEL and ADD again of the same attachment succeed every time through one server', async () => {
  const n = await warmNode({ mode: 'routed' });
  const p = n.pod('re');
  // A node has an address of its own: the kernel answers pods from it (routed veths hold none).
  execFileSync('ip', ['-n', n.node, 'addr', 'add', '10.99.0.1/32', 'dev', 'lo']);
  const veth = hostVethName({ containerId: 'again', ifname: 'eth0' });
  for (let round = 1; round <= 3; round++) {
    const add = await n.call('ADD', 'again', netnsPath(p));
    assert.equal(add.code, 0, `ADD ${round}: ${add.stdout}`);
    const ip = add.json.ips[0].address.split('/')[0];
    assert.match(inNetns(n.node, 'ip', ['-4', 'route', 'show', `${ip}/32`]), new RegExp(`dev ${veth}`), `round ${round}: the node routes the pod`);
    inNetns(n.node, 'ping', ['-c', '1', '-W', '2', ip]);
    const del = await n.call('DEL', 'again', netnsPath(p));
    assert.equal(del.code, 0, `DEL ${round}: ${del.stdout}`);
    assert.deepEqual(podLinks(p), ['lo'], `round ${round}: DEL removed the pod's eth0`);
    assert.ok(!n.links().some((l) => l.ifname === veth), `round ${round}: DEL removed the host veth`);
  }
  assert.deepEqual(n.reservations(), []);
  await n.normalAdd('after');
});

test('bridge: a cni0 deleted out of band is made again by the next warm ADD, and later ADDs keep working', async () => {
  const n = await warmNode();
  await n.normalAdd('b1');
  execFileSync('ip', ['-n', n.node, 'link', 'del', 'cni0']);
  const r = await n.normalAdd('b2');
  const veth = hostVethName({ containerId: 'b2', ifname: 'eth0' });
  assert.equal(n.links().find((l) => l.ifname === veth)?.master, 'cni0', r.stdout);
  inNetns(r.pod, 'ping', ['-c', '1', '-W', '2', '10.81.0.1']);
  await n.normalAdd('b3');
});

test('a FIFO as CNI_NETNS is refused with code 4 naming it, warm and cold, and leaves nothing', async () => {
  const fifo = join(scope.dir, 'not-a-netns');
  execFileSync('mkfifo', [fifo]);
  for (const serve of [true, false]) {
    const n = await warmNode({ mode: serve ? 'routed' : 'bridge' }, serve);
    const r = await n.call('ADD', 'fifo', fifo);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.json.code, 4, r.stdout);
    assert.match(r.json.msg, new RegExp(`CNI_NETNS "${fifo}" is not a network namespace \\(it is a FIFO\\)`));
    assert.deepEqual(n.reservations(), []);
    assert.deepEqual(n.links().map((l) => l.ifname), ['lo']);
    await n.normalAdd('f');
  }
});

test('a 20 MB configuration gets code 7 naming its size, warm as cold, in the version it asked for', async () => {
  const warm = await warmNode();
  const cold = await warmNode({}, false);
  const big = JSON.stringify({ ...warm.conf, cniVersion: '0.4.0', padding: 'x'.repeat(20 * 1024 * 1024) });
  const [w, c] = [await warm.call('ADD', 'big', netnsPath(warm.pod('big')), big), await cold.call('ADD', 'big', netnsPath(cold.pod('big')), big)];
  assert.deepEqual({ code: w.code, stdout: w.stdout }, { code: c.code, stdout: c.stdout });
  assert.equal(w.json.code, 7, w.stdout);
  assert.equal(w.json.cniVersion, '0.4.0');
  assert.match(w.json.msg, new RegExp(`${Buffer.byteLength(big)} bytes`));
  assert.deepEqual(warm.reservations(), []);
  await warm.normalAdd('after');
});

test('the shim\'s own errors answer in the cniVersion the request asked for', async () => {
  const n = await warmNode({}, false);
  for (const version of ['0.3.1', '1.1.0']) {
    const r = await callPlugin({ command: 'ADD', containerId: 'v', netns: netnsPath(n.pod(`v${version.replace(/\./g, '')}`)), ifname: 'eth0', nodeNetns: n.node, plugin: LONE_SHIM },
      { ...n.conf, cniVersion: version });
    assert.equal(r.json.code, 11, r.stdout);
    assert.match(r.json.msg, /flatnet-cni-node cannot run/);
    assert.equal(r.json.cniVersion, version);
  }
});

test('an ADD whose node-side ip dies after making the veth is undone: no host veth, no pod eth0, no reservation', async () => {
  const n = await warmNode({ mode: 'routed' }, false);
  const p = n.pod('dies');
  const script = join(scope.dir, 'dies.mjs');
  const mod = (m: string) => JSON.stringify(new URL(`../../src/${m}.js`, import.meta.url).href);
  // A session that applies every request, then dies before answering: what ran is unknown to ADD.
  writeFileSync(script, `
    const { cmdAdd } = await import(${mod('cni/add')});
    const { parseConf } = await import(${mod('cni/config')});
    const { useIpSession } = await import(${mod('kernel/ip')});
    const { IpSession, IpSessionError } = await import(${mod('kernel/ip-session')});
    const real = new IpSession();
    useIpSession({ renew: () => real.renew(), run: async (lines) => { await real.run(lines); throw new IpSessionError('ip session ended'); } });
    const env = { command: 'ADD', containerId: 'dies', netns: process.argv[3], ifname: 'eth0', args: new Map(), path: [] };
    const out = await cmdAdd(env, parseConf(JSON.parse(process.argv[2]))).then(() => ({ code: 0 }), (e) => ({ code: e.code, msg: e.message }));
    real.close();
    console.log(JSON.stringify(out));
  `);
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('nsenter', [`--net=${netnsPath(n.node)}`, process.execPath, script, JSON.stringify(n.conf), netnsPath(p)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout!.on('data', (b: Buffer) => { stdout += b; });
    child.stderr!.on('data', (b: Buffer) => { stderr += b; });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { code: number; msg: string };
  assert.equal(out.code, 11, out.msg);
  assert.deepEqual(n.links().map((l) => l.ifname), ['lo'], 'no host veth left');
  assert.deepEqual(podLinks(p), ['lo'], 'no pod eth0 left');
  assert.deepEqual(n.reservations(), []);
});
