// flatnet-cni against the real kernel: each case in namespaces of its own, removed afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope, netnsPath, inNetns } from '../helpers/scope.js';
import { callPlugin, flatnetConf } from '../helpers/plugin.js';
import { askEcho, startEchoServer } from '../helpers/echo.js';
import { hostVethName } from '../../src/cni/plan.js';

const scope = new TestScope('cni');
after(() => scope.cleanupSync());

let seq = 0;
/** A node netns and a config of its own, so cases do not share state. */
function newNode(version = '1.0.0', extra: Record<string, unknown> = {}) {
  const id = ++seq;
  const node = scope.netns(`n${id}`);
  const dataDir = join(scope.dir, `ipam${id}`);
  const conf = flatnetConf({ subnet: '10.77.0.0/24', dataDir, bridge: 'cni0', version, extra });
  const pod = (name: string) => scope.netns(`n${id}${name}`);
  const call = (command: string, containerId: string, podNs: string | undefined, config: unknown = conf, more: object = {}) =>
    callPlugin({ command, containerId, netns: podNs === undefined ? '' : netnsPath(podNs), ifname: 'eth0', nodeNetns: node, ...more }, config);
  const reservations = () => (existsSync(join(dataDir, 'pods')) ? readdirSync(join(dataDir, 'pods')).filter((f) => /^\d/.test(f)) : []);
  const nodeLinks = () => JSON.parse(execFileSync('ip', ['-n', node, '-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string; master?: string }>;
  return { node, dataDir, conf, pod, call, reservations, nodeLinks };
}

test('ADD wires a pod onto the bridge; two pods ping each other; DEL releases everything', async () => {
  const n = newNode();
  const [pa, pb] = [n.pod('a'), n.pod('b')];
  const ra = await n.call('ADD', 'ctr-a', pa);
  const rb = await n.call('ADD', 'ctr-b', pb);
  assert.equal(ra.code, 0, ra.stdout + ra.stderr);
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  const ipa = ra.json.ips[0].address as string;
  const ipb = rb.json.ips[0].address as string;
  assert.equal(ra.json.cniVersion, '1.0.0');
  assert.deepEqual(ra.json.interfaces.map((i: any) => i.name), ['cni0', hostVethName({ containerId: 'ctr-a', ifname: 'eth0' }), 'eth0']);
  assert.equal(ra.json.interfaces[2].sandbox, netnsPath(pa));
  assert.equal(ra.json.ips[0].gateway, '10.77.0.1');
  assert.notEqual(ipa, ipb);

  const addr = JSON.parse(inNetns(pa, 'ip', ['-j', 'addr', 'show', 'dev', 'eth0']))[0];
  assert.ok(addr.addr_info.some((x: any) => `${x.local}/${x.prefixlen}` === ipa));
  assert.match(inNetns(pa, 'ip', ['route', 'show', 'default']), /default via 10\.77\.0\.1 dev eth0/);
  // The reservation is host-local's file: named by the IP, holding "id\r\nifname".
  assert.equal(readFileSync(join(n.dataDir, 'pods', ipa.split('/')[0]), 'utf8'), 'ctr-a\r\neth0');

  inNetns(pa, 'ping', ['-c', '1', '-W', '2', ipb.split('/')[0]]);
  inNetns(pb, 'ping', ['-c', '1', '-W', '2', ipa.split('/')[0]]);
  // The node itself reaches its pods through the bridge gateway.
  inNetns(n.node, 'ping', ['-c', '1', '-W', '2', ipa.split('/')[0]]);

  const d = await n.call('DEL', 'ctr-a', pa);
  assert.equal(d.code, 0, d.stdout);
  assert.equal(d.stdout.trim(), '');
  assert.ok(!n.nodeLinks().some((l) => l.ifname === hostVethName({ containerId: 'ctr-a', ifname: 'eth0' })));
  assert.throws(() => inNetns(pa, 'ip', ['link', 'show', 'eth0']));
  assert.deepEqual(n.reservations(), [ipb.split('/')[0]]);
});

test('the result comes in the version asked for, and VERSION lists every version', async () => {
  for (const version of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const n = newNode(version);
    const r = await n.call('ADD', 'v', n.pod('p'));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.json.cniVersion, version);
    assert.equal(r.json.ips[0].version, version.startsWith('0.') ? '4' : undefined, version);
    assert.equal(r.json.interfaces[2].mtu, version === '1.1.0' ? 1500 : undefined, version);
  }
  const v = await callPlugin({ command: 'VERSION' }, { cniVersion: '0.4.0' });
  assert.equal(v.code, 0);
  assert.deepEqual(v.json, { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
});

test('DEL succeeds when the netns is gone, when CNI_NETNS is empty, and twice; the address is freed', async () => {
  const n = newNode();
  const p1 = n.pod('x');
  assert.equal((await n.call('ADD', 'gone', p1)).code, 0);
  execFileSync('ip', ['netns', 'del', p1]);
  assert.equal((await n.call('DEL', 'gone', p1)).code, 0);
  assert.deepEqual(n.reservations(), []);

  const p2 = n.pod('y');
  assert.equal((await n.call('ADD', 'empty', p2)).code, 0);
  const r = await n.call('DEL', 'empty', undefined);
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(n.reservations(), []);
  assert.throws(() => inNetns(p2, 'ip', ['link', 'show', 'eth0']), 'the pod interface goes with the host veth');
  assert.equal((await n.call('DEL', 'empty', undefined)).code, 0, 'a second DEL succeeds');
  assert.equal((await n.call('DEL', 'never-added', p2)).code, 0, 'DEL of an unknown attachment succeeds');
});

test('CHECK passes on a whole attachment and names what is missing', async () => {
  const n = newNode('1.1.0');
  const p = n.pod('c');
  const add = await n.call('ADD', 'chk', p);
  assert.equal(add.code, 0, add.stdout);
  const withPrev = { ...n.conf, prevResult: add.json };
  const check = () => n.call('CHECK', 'chk', p, withPrev);
  assert.equal((await check()).code, 0);

  const ip = add.json.ips[0].address as string;
  inNetns(p, 'ip', ['route', 'del', 'default']);
  let r = await check();
  assert.equal(r.code, 1);
  assert.match(r.json.msg, /route to 0\.0\.0\.0\/0 missing/);
  inNetns(p, 'ip', ['route', 'add', 'default', 'via', '10.77.0.1']);
  assert.equal((await check()).code, 0);

  inNetns(p, 'ip', ['addr', 'del', ip, 'dev', 'eth0']);
  r = await check();
  assert.match(r.json.msg, new RegExp(`address ${ip.replace(/\./g, '\\.')} missing`));
  inNetns(p, 'ip', ['addr', 'add', ip, 'dev', 'eth0']);
  inNetns(p, 'ip', ['route', 'add', 'default', 'via', '10.77.0.1']);
  assert.equal((await check()).code, 0);

  execFileSync('rm', [join(n.dataDir, 'pods', ip.split('/')[0])]);
  r = await check();
  assert.match(r.json.msg, /is not reserved/);

  inNetns(p, 'ip', ['link', 'del', 'eth0']);
  r = await check();
  assert.match(r.json.msg, /interface "eth0" not found/);

  const old = { ...n.conf, cniVersion: '0.3.1', prevResult: add.json };
  r = await n.call('CHECK', 'chk', p, old);
  assert.equal(r.json.code, 1, 'CHECK needs 0.4.0 or later');
});

test('STATUS is fine with a usable config and says 50 when ADD could not be served', async () => {
  const n = newNode('1.1.0');
  assert.equal((await callPlugin({ command: 'STATUS' }, n.conf)).code, 0);
  const file = join(scope.dir, 'a-file');
  execFileSync('touch', [file]);
  const badDir = flatnetConf({ subnet: '10.77.0.0/24', dataDir: join(file, 'sub'), bridge: 'cni0', version: '1.1.0' });
  let r = await callPlugin({ command: 'STATUS' }, badDir);
  assert.equal(r.json.code, 50, r.stdout);
  assert.match(r.json.msg, /a-file/);
  const noRanges = { ...n.conf, ipam: { ranges: [] } };
  r = await callPlugin({ command: 'STATUS' }, noRanges);
  assert.equal(r.json.code, 50, r.stdout);
  assert.match(r.json.msg, /ipam\.ranges/);
  r = await callPlugin({ command: 'STATUS' }, { ...n.conf, cniVersion: '1.0.0' });
  assert.equal(r.json.code, 1, 'STATUS needs 1.1.0');
  // A used-up range: 50 naming it; a free address again: 0.
  const tiny = { ...n.conf, ipam: { ...(n.conf.ipam as object), ranges: [[{ subnet: '10.77.0.0/24', rangeStart: '10.77.0.2', rangeEnd: '10.77.0.3' }]] } };
  for (const id of ['s1', 's2']) assert.equal((await n.call('ADD', id, n.pod(id), tiny)).code, 0);
  r = await callPlugin({ command: 'STATUS' }, tiny);
  assert.equal(r.json.code, 50, r.stdout);
  assert.match(r.json.msg, /no free address in range set 0 \(10\.77\.0\.0\/24, 10\.77\.0\.2-10\.77\.0\.3\): all 2 addresses/);
  assert.equal((await n.call('DEL', 's1', n.pod('s1x'), tiny)).code, 0);
  assert.equal((await callPlugin({ command: 'STATUS' }, tiny)).code, 0, 'a released address makes ADD possible again');
});

test('GC releases every reservation and host veth not in cni.dev/valid-attachments', async () => {
  const n = newNode('1.1.0');
  const keep = n.pod('k');
  const drop = n.pod('d');
  assert.equal((await n.call('ADD', 'keep', keep)).code, 0);
  assert.equal((await n.call('ADD', 'drop', drop)).code, 0);
  assert.equal(n.reservations().length, 2);
  const gc = await callPlugin({ command: 'GC', nodeNetns: n.node }, { ...n.conf, 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] });
  assert.equal(gc.code, 0, gc.stdout);
  assert.equal(n.reservations().length, 1);
  assert.equal(readFileSync(join(n.dataDir, 'pods', n.reservations()[0]), 'utf8'), 'keep\r\neth0');
  const links = n.nodeLinks().map((l) => l.ifname);
  assert.ok(links.includes(hostVethName({ containerId: 'keep', ifname: 'eth0' })));
  assert.ok(!links.includes(hostVethName({ containerId: 'drop', ifname: 'eth0' })));
  // The old key name is honoured too.
  const gc2 = await callPlugin({ command: 'GC', nodeNetns: n.node }, { ...n.conf, 'cni.dev/attachments': [] });
  assert.equal(gc2.code, 0);
  assert.deepEqual(n.reservations(), []);
});

test('a requested address is honoured (CNI_ARGS IP= and args.cni.ips) and a taken one refused', async () => {
  const n = newNode();
  let r = await n.call('ADD', 'req1', n.pod('r1'), n.conf, { args: 'IgnoreUnknown=1;IP=10.77.0.50' });
  assert.equal(r.json.ips[0].address, '10.77.0.50/24', r.stdout);
  r = await n.call('ADD', 'req2', n.pod('r2'), { ...n.conf, args: { cni: { ips: ['10.77.0.60'] } } });
  assert.equal(r.json.ips[0].address, '10.77.0.60/24', r.stdout);
  r = await n.call('ADD', 'req3', n.pod('r3'), n.conf, { args: 'IP=10.77.0.50' });
  assert.equal(r.code, 1);
  assert.match(r.json.msg, /10\.77\.0\.50/);
  assert.equal(n.reservations().length, 2);
});

test('ipMasq masquerades pod traffic leaving the bridge but not pod-to-pod traffic', async () => {
  const n = newNode('1.0.0', { ipMasq: true });
  // An "outside" host on a link of the node's own.
  const ext = scope.netns(`ext${seq}`);
  execFileSync('ip', ['-n', n.node, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'out0', 'netns', ext]);
  execFileSync('ip', ['-n', n.node, 'addr', 'add', '192.168.77.1/24', 'dev', 'up0']);
  execFileSync('ip', ['-n', n.node, 'link', 'set', 'up0', 'up']);
  execFileSync('ip', ['-n', ext, 'addr', 'add', '192.168.77.2/24', 'dev', 'out0']);
  execFileSync('ip', ['-n', ext, 'link', 'set', 'out0', 'up']);
  const [p, q] = [n.pod('m'), n.pod('q')];
  const r = await n.call('ADD', 'masq', p);
  const rq = await n.call('ADD', 'peer', q);
  assert.equal(r.code, 0, r.stdout);
  const ip = (r.json.ips[0].address as string).split('/')[0];
  const ipq = (rq.json.ips[0].address as string).split('/')[0];
  scope.adoptProcess(await startEchoServer(ext, 7001));
  scope.adoptProcess(await startEchoServer(q, 7002));
  assert.equal(await askEcho(p, '192.168.77.2', 7001), '192.168.77.1', 'leaving the node: masqueraded to the node address');
  assert.equal(await askEcho(p, ipq, 7002), ip, 'pod to pod: the source is the pod itself');

  assert.equal((await n.call('DEL', 'masq', p)).code, 0);
  assert.doesNotMatch(inNetns(n.node, 'nft', ['list', 'set', 'ip', 'flatnet-cni', 'masq_pods']), new RegExp(`\\b${ip.replace(/\./g, '\\.')}\\b`));
  assert.equal((await n.call('DEL', 'masq', p)).code, 0, 'DEL again succeeds with the element gone');
});

test('mode "routed": no bridge, a /32 route per pod; pods and node reach each other; CHECK passes and names a lost route; DEL removes it', async () => {
  const n = newNode('1.0.0', { mode: 'routed' });
  // A node has an address of its own: the kernel answers pods from it (routed veths hold none).
  execFileSync('ip', ['-n', n.node, 'addr', 'add', '192.168.99.1/32', 'dev', 'lo']);
  const [pa, pb] = [n.pod('ra'), n.pod('rb')];
  const ra = await n.call('ADD', 'rt-a', pa);
  const rb = await n.call('ADD', 'rt-b', pb);
  assert.equal(ra.code, 0, ra.stdout + ra.stderr);
  assert.equal(rb.code, 0, rb.stdout + rb.stderr);
  const veth = hostVethName({ containerId: 'rt-a', ifname: 'eth0' });
  assert.deepEqual(ra.json.interfaces.map((i: any) => i.name), [veth, 'eth0'], 'no bridge in the result');
  assert.match(ra.json.ips[0].address, /^10\.77\.0\.\d+\/32$/);
  assert.equal(ra.json.ips[0].interface, 1);
  assert.ok(!n.nodeLinks().some((l) => l.ifname === 'cni0'), 'no bridge on the node');
  const ipa = ra.json.ips[0].address.split('/')[0] as string;
  const ipb = rb.json.ips[0].address.split('/')[0] as string;
  assert.match(inNetns(n.node, 'ip', ['route', 'show', ipa]), new RegExp(`^${ipa.replace(/\./g, '\\.')} dev ${veth} scope link`, 'm'));
  assert.match(inNetns(pa, 'ip', ['route', 'show', 'default']), /default via 10\.77\.0\.1 dev eth0/);

  inNetns(pa, 'ping', ['-c', '1', '-W', '2', ipb]);
  inNetns(n.node, 'ping', ['-c', '1', '-W', '2', ipa]);

  const prev = { ...n.conf, mode: 'routed', prevResult: ra.json };
  assert.equal((await n.call('CHECK', 'rt-a', pa, prev)).code, 0);
  execFileSync('ip', ['-n', n.node, 'route', 'del', `${ipa}/32`]);
  const broken = await n.call('CHECK', 'rt-a', pa, prev);
  assert.equal(broken.code, 1);
  assert.match(broken.json.msg, new RegExp(`node route to ${ipa.replace(/\./g, '\\.')} via "${veth}" missing`));

  for (const [id, p] of [['rt-a', pa], ['rt-b', pb]] as const) assert.equal((await n.call('DEL', id, p)).code, 0);
  assert.equal(inNetns(n.node, 'ip', ['-4', 'route', 'show', 'dev', 'lo']).trim(), '');
  assert.ok(!n.nodeLinks().some((l) => /^fn[0-9a-f]{12}$/.test(l.ifname)));
  assert.deepEqual(n.reservations(), []);
});

test('mode "routed" refuses IPv6 ranges and ipMasq, naming the field', async () => {
  const n = newNode();
  const v6 = { ...n.conf, mode: 'routed', ipam: { ranges: [[{ subnet: 'fd00:77::/64' }]], dataDir: n.dataDir } };
  const r1 = await n.call('ADD', 'x1', n.pod('x1'), v6);
  assert.equal(r1.json.code, 7);
  assert.match(r1.json.msg, /mode: "routed" serves IPv4 ranges only/);
  const r2 = await n.call('ADD', 'x2', n.pod('x2'), { ...n.conf, mode: 'routed', ipMasq: true });
  assert.equal(r2.json.code, 7);
  assert.match(r2.json.msg, /ipMasq: not available with mode "routed"/);
  const r3 = await n.call('ADD', 'x3', n.pod('x3'), { ...n.conf, mode: 'ptp' });
  assert.match(r3.json.msg, /mode: "ptp" is not "bridge" or "routed"/);
  assert.deepEqual(n.reservations(), []);
});

test('a MAC asked for (CNI_ARGS MAC=, runtimeConfig.mac) is the pod interface\'s; a bad one is refused naming it', async () => {
  const n = newNode();
  const p = n.pod('mac');
  const r = await n.call('ADD', 'mac', p, n.conf, { args: 'IgnoreUnknown=1;MAC=0A:11:22:33:44:55' });
  assert.equal(r.code, 0, r.stdout);
  assert.equal(r.json.interfaces[2].mac, '0a:11:22:33:44:55');
  assert.equal(JSON.parse(inNetns(p, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address, '0a:11:22:33:44:55');
  const p2 = n.pod('mac2');
  const rc = await n.call('ADD', 'mac2', p2, { ...n.conf, runtimeConfig: { mac: '0a:66:55:44:33:22' } }, { args: 'MAC=0a:11:22:33:44:56' });
  assert.equal(rc.code, 0, rc.stdout);
  assert.equal(JSON.parse(inNetns(p2, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address, '0a:66:55:44:33:22', 'runtimeConfig.mac wins');
  const bad = await n.call('ADD', 'mac3', n.pod('mac3'), n.conf, { args: 'MAC=01:00:5e:00:00:01' });
  assert.equal(bad.json.code, 4, bad.stdout);
  assert.match(bad.json.msg, /CNI_ARGS MAC "01:00:5e:00:00:01" is not a unicast MAC address/);
  const badConf = await n.call('ADD', 'mac4', n.pod('mac4'), { ...n.conf, runtimeConfig: { mac: 'zz' } });
  assert.equal(badConf.json.code, 7, badConf.stdout);
  assert.match(badConf.json.msg, /runtimeConfig\.mac: "zz"/);
  assert.equal(n.reservations().length, 2, 'the refused ADDs took no address');
});
