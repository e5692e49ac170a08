// What goes wrong: bad input gets its spec code and a message naming the field, and leaves nothing;
// concurrent plugin processes never share an address; a plugin killed mid-ADD leaves only what GC frees.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope, netnsPath, inNetns } from '../helpers/scope.js';
import { callPlugin, flatnetConf, FLATNET_CNI } from '../helpers/plugin.js';
import { hostVethName } from '../../src/cni/plan.js';

const scope = new TestScope('fail');
after(() => scope.cleanupSync());

let seq = 0;
function newNode(subnet = '10.78.0.0/24') {
  const id = ++seq;
  const node = scope.netns(`n${id}`);
  const dataDir = join(scope.dir, `ipam${id}`);
  const conf = flatnetConf({ subnet, dataDir, bridge: 'cni0' });
  const netDir = join(dataDir, 'pods');
  const files = () => (existsSync(netDir) ? readdirSync(netDir) : []);
  const reservations = () => files().filter((f) => /^(\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f:]*)$/.test(f));
  const veths = () => (JSON.parse(execFileSync('ip', ['-n', node, '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>)
    .map((l) => l.ifname).filter((n) => n.startsWith('fn'));
  return { node, dataDir, conf, files, reservations, veths };
}

const podLinks = (ns: string) => (JSON.parse(inNetns(ns, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>).map((l) => l.ifname);

test('each malformed input gets its spec code, names the culprit and leaves nothing', async () => {
  const n = newNode();
  const pod = scope.netns('badpod');
  const base = { containerId: 'bad', netns: netnsPath(pod), ifname: 'eth0', nodeNetns: n.node };
  const cases: Array<{ what: string; call: object; conf?: unknown; code: number; msg: RegExp }> = [
    { what: 'no CNI_COMMAND', call: { command: '' }, code: 4, msg: /CNI_COMMAND/ },
    { what: 'no CNI_CONTAINERID', call: { containerId: undefined }, code: 4, msg: /CNI_CONTAINERID/ },
    { what: 'no CNI_NETNS on ADD', call: { netns: undefined }, code: 4, msg: /CNI_NETNS/ },
    { what: 'no CNI_IFNAME', call: { ifname: undefined }, code: 4, msg: /CNI_IFNAME/ },
    { what: 'bad container ID', call: { containerId: '../etc' }, code: 4, msg: /CNI_CONTAINERID "\.\.\/etc"/ },
    { what: 'interface name over 15 characters', call: { ifname: 'eth0123456789abc' }, code: 4, msg: /CNI_IFNAME "eth0123456789abc" is 16 characters/ },
    { what: 'unknown cniVersion', call: {}, conf: { ...n.conf, cniVersion: '9.9.9' }, code: 1, msg: /cniVersion "9\.9\.9"/ },
    { what: 'broken JSON', call: {}, conf: '{"cniVersion": "1.0.0", "name": ', code: 6, msg: /not valid JSON/ },
    { what: 'subnet with host bits set', call: {}, conf: flatnetConf({ subnet: '10.78.0.5/24', dataDir: n.dataDir, bridge: 'cni0' }), code: 7, msg: /ipam\.ranges\[0\]\[0\]\.subnet.*10\.78\.0\.5\/24/ },
    { what: 'missing netns', call: { netns: '/run/netns/does-not-exist-' + scope.prefix }, code: 3, msg: /does-not-exist/ },
    { what: 'bridge name too long', call: {}, conf: { ...n.conf, bridge: 'averyveryverylongbridge' }, code: 7, msg: /bridge "averyveryverylongbridge"/ },
  ];
  for (const c of cases) {
    const call = { ...base, command: 'ADD', ...c.call } as Record<string, unknown>;
    for (const k of Object.keys(call)) if (call[k] === undefined) delete call[k];
    const r = await callPlugin(call as any, c.conf ?? n.conf);
    assert.equal(r.code, 1, `${c.what}: exit status`);
    assert.equal(r.json?.code, c.code, `${c.what}: ${r.stdout}`);
    assert.match(r.json.msg, c.msg, c.what);
    assert.deepEqual(n.reservations(), [], `${c.what}: no reservation`);
    assert.deepEqual(n.veths(), [], `${c.what}: no veth`);
    assert.deepEqual(podLinks(pod), ['lo'], `${c.what}: no pod interface`);
  }
});

test('an exhausted range is refused with the range named, and nothing is left', async () => {
  const n = newNode('10.78.1.0/29');
  const conf = flatnetConf({ subnet: '10.78.1.0/29', dataDir: n.dataDir, bridge: 'cni0', ipamExtra: { ranges: [[{ subnet: '10.78.1.0/29', rangeStart: '10.78.1.2', rangeEnd: '10.78.1.3' }]] } });
  for (const id of ['e1', 'e2']) {
    const r = await callPlugin({ command: 'ADD', containerId: id, netns: netnsPath(scope.netns(`ex${id}`)), ifname: 'eth0', nodeNetns: n.node }, conf);
    assert.equal(r.code, 0, r.stdout);
  }
  const pod = scope.netns('ex3');
  const r = await callPlugin({ command: 'ADD', containerId: 'e3', netns: netnsPath(pod), ifname: 'eth0', nodeNetns: n.node }, conf);
  assert.equal(r.json.code, 11, r.stdout);
  assert.match(r.json.msg, /10\.78\.1\.0\/29/);
  assert.equal(n.reservations().length, 2);
  assert.equal(n.veths().length, 2);
  assert.deepEqual(podLinks(pod), ['lo']);
});

test('a kernel failure after the address was taken rolls everything back', async () => {
  const n = newNode();
  // The pod already has an eth0: creating the veth peer fails after IPAM reserved an address.
  const pod = scope.netns('clash');
  execFileSync('ip', ['-n', pod, 'link', 'add', 'eth0', 'type', 'bridge']);
  let r = await callPlugin({ command: 'ADD', containerId: 'clash', netns: netnsPath(pod), ifname: 'eth0', nodeNetns: n.node }, n.conf);
  assert.equal(r.code, 1);
  assert.match(r.json.msg, /eth0/);
  assert.deepEqual(n.reservations(), []);
  assert.deepEqual(n.veths(), []);

  // A route the pod side cannot install fails after the veth exists: veth and address both go.
  const pod2 = scope.netns('route');
  const badRoute = { ...n.conf, ipam: { ...(n.conf.ipam as object), routes: [{ dst: '192.168.0.0/16', gw: '172.31.0.1' }] } };
  r = await callPlugin({ command: 'ADD', containerId: 'route', netns: netnsPath(pod2), ifname: 'eth0', nodeNetns: n.node }, badRoute);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.json.msg, /route add 192\.168\.0\.0\/16/);
  assert.deepEqual(n.reservations(), []);
  assert.deepEqual(n.veths(), []);
  assert.deepEqual(podLinks(pod2), ['lo']);
});

test('100 ADDs in parallel get 100 distinct addresses; DEL of all leaves no reservation', async () => {
  const n = newNode('10.79.0.0/16');
  const pods = Array.from({ length: 100 }, (_, i) => scope.netns(`c${i}`));
  const adds = await Promise.all(pods.map((p, i) =>
    callPlugin({ command: 'ADD', containerId: `par${i}`, netns: netnsPath(p), ifname: 'eth0', nodeNetns: n.node }, n.conf)));
  adds.forEach((r, i) => assert.equal(r.code, 0, `ADD ${i}: ${r.stdout}${r.stderr}`));
  const ips = adds.map((r) => r.json.ips[0].address);
  assert.equal(new Set(ips).size, 100);
  assert.equal(n.reservations().length, 100);
  assert.equal(n.veths().length, 100);
  const dels = await Promise.all(pods.map((p, i) =>
    callPlugin({ command: 'DEL', containerId: `par${i}`, netns: netnsPath(p), ifname: 'eth0', nodeNetns: n.node }, n.conf)));
  dels.forEach((r, i) => assert.equal(r.code, 0, `DEL ${i}: ${r.stdout}`));
  assert.deepEqual(n.reservations(), []);
  assert.deepEqual(n.veths(), []);
  assert.deepEqual(n.files().filter((f) => !f.startsWith('last_reserved_ip')), [], 'no lock or temp file left');
});

test('plugins killed mid-ADD leave nothing that GC does not clean', async () => {
  const n = newNode();
  const conf11 = { ...n.conf, cniVersion: '1.1.0' };
  const pods = Array.from({ length: 12 }, (_, i) => scope.netns(`k${i}`));
  await Promise.all(pods.map((p, i) => new Promise<void>((resolve) => {
    const env = { PATH: process.env.PATH!, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `kill${i}`, CNI_NETNS: netnsPath(p), CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
    const child = spawn('nsenter', [`--net=${netnsPath(n.node)}`, FLATNET_CNI], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.end(JSON.stringify(conf11));
    // Spread the kills over a plugin's lifetime: before IPAM, during it, during the kernel work.
    setTimeout(() => child.kill('SIGKILL'), 20 + i * 15);
    child.on('close', () => resolve());
  })));
  const gc = await callPlugin({ command: 'GC', nodeNetns: n.node }, { ...conf11, 'cni.dev/valid-attachments': [] });
  assert.equal(gc.code, 0, gc.stdout);
  assert.deepEqual(n.reservations(), []);
  assert.deepEqual(n.veths(), []);
  // Whatever lock a killed plugin held does not block the next one.
  const r = await callPlugin({ command: 'ADD', containerId: 'after', netns: netnsPath(scope.netns('after')), ifname: 'eth0', nodeNetns: n.node }, n.conf);
  assert.equal(r.code, 0, r.stdout);
});

test('routed: GC removes the host veth, its /32 route and the pod\'s eth0 of every attachment not valid, also after kills mid-ADD', async () => {
  const n = newNode();
  const conf = { ...n.conf, cniVersion: '1.1.0', mode: 'routed' };
  const call = (command: string, id: string, pod: string) =>
    callPlugin({ command, containerId: id, netns: netnsPath(pod), ifname: 'eth0', nodeNetns: n.node }, conf);
  const [keep, gone] = [scope.netns('rkeep'), scope.netns('rgone')];
  const kept = await call('ADD', 'keep', keep);
  assert.equal(kept.code, 0, kept.stdout);
  assert.equal((await call('ADD', 'gone', gone)).code, 0);
  const killed = Array.from({ length: 8 }, (_, i) => scope.netns(`rk${i}`));
  await Promise.all(killed.map((p, i) => new Promise<void>((resolve) => {
    const env = { PATH: process.env.PATH!, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `rkill${i}`, CNI_NETNS: netnsPath(p), CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
    const child = spawn('nsenter', [`--net=${netnsPath(n.node)}`, FLATNET_CNI], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.end(JSON.stringify(conf));
    setTimeout(() => child.kill('SIGKILL'), 20 + i * 20);
    child.on('close', () => resolve());
  })));
  const gc = await callPlugin({ command: 'GC', nodeNetns: n.node }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] });
  assert.equal(gc.code, 0, gc.stdout);
  const keepIp = kept.json.ips[0].address.split('/')[0];
  assert.deepEqual(n.reservations(), [keepIp]);
  assert.deepEqual(n.veths(), [hostVethName({ containerId: 'keep', ifname: 'eth0' })]);
  assert.deepEqual(inNetns(n.node, 'ip', ['-4', 'route', 'show']).trim().split('\n').map((l) => l.split(' ')[0]), [keepIp], 'only the kept pod\'s /32 is routed');
  for (const p of [gone, ...killed]) assert.deepEqual(podLinks(p), ['lo'], `${p}: its eth0 went with the host veth`);
  assert.deepEqual(podLinks(keep), ['lo', 'eth0']);
});

test('a DEL that cannot get the IPAM lock in time answers 11 (try again), and the retried DEL frees the address', async () => {
  const n = newNode();
  const pod = scope.netns('lockdel');
  const add = await callPlugin({ command: 'ADD', containerId: 'held', netns: netnsPath(pod), ifname: 'eth0', nodeNetns: n.node }, n.conf);
  assert.equal(add.code, 0, add.stdout);
  // A live process (this test) holds the lock; the DEL waits 300 ms instead of a runtime's 60 s.
  const lock = join(n.dataDir, 'pods', 'lock');
  writeFileSync(lock, String(process.pid));
  const script = join(scope.dir, 'del-held.mjs');
  const mod = (p: string) => new URL(`../../src/${p}.js`, import.meta.url).href;
  writeFileSync(script, `
    const { cmdDel } = await import(${JSON.stringify(mod('cni/del'))});
    const { parseConf } = await import(${JSON.stringify(mod('cni/config'))});
    const { lockDefaults } = await import(${JSON.stringify(mod('ipam/lock'))});
    lockDefaults.timeoutMs = 300;
    const env = { command: 'DEL', containerId: 'held', netns: '', ifname: 'eth0', args: new Map(), path: [] };
    const out = await cmdDel(env, parseConf(JSON.parse(process.argv[2]))).then(() => ({ code: 0 }), (e) => ({ code: e.code, msg: e.message }));
    console.log(JSON.stringify(out));
  `);
  const r = spawnSync('nsenter', [`--net=${netnsPath(n.node)}`, process.execPath, script, JSON.stringify(n.conf)], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const first = JSON.parse(r.stdout) as { code: number; msg: string };
  assert.equal(first.code, 11, first.msg);
  assert.match(first.msg, /IPAM lock .* still held by pid/);
  assert.equal(n.reservations().length, 1, 'the address is still reserved until the retry');
  unlinkSync(lock);
  const again = await callPlugin({ command: 'DEL', containerId: 'held', netns: netnsPath(pod), ifname: 'eth0', nodeNetns: n.node }, n.conf);
  assert.equal(again.code, 0, again.stdout);
  assert.deepEqual(n.reservations(), []);
});
