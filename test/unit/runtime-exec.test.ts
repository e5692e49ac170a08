// The runtime against fake plugins (small node scripts that log each call): no root needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniRuntime, CniAggregateError } from '../../src/runtime/runtime.js';
import { confListFromObject, type NetworkConfigList } from '../../src/runtime/conflist.js';
import { execPlugin } from '../../src/runtime/exec.js';

interface Behaviour {
  /** Per command: an error object to print (exit 1), or raw stderr + exit status. */
  fail?: Record<string, { code?: number; msg?: string; details?: string; stderr?: string; exit?: number }>;
  /** ADD adds this address to the result. */
  ip?: string;
  /** ADD answers in this version instead of the config's. */
  answerVersion?: string;
}
interface Call { type: string; cmd: string; env: Record<string, string>; conf: any }

class Fakes {
  readonly dir = mkdtempSync(join(tmpdir(), 'fnrt-exec-'));
  readonly bin = join(this.dir, 'bin');
  readonly log = join(this.dir, 'calls.jsonl');
  constructor() { mkdirSync(this.bin); }

  plugin(type: string, b: Behaviour = {}): void {
    const p = join(this.bin, type);
    writeFileSync(p, `#!${process.execPath}
const fs = require('fs');
const B = ${JSON.stringify(b)}, TYPE = ${JSON.stringify(type)};
let input = ''; try { input = fs.readFileSync(0, 'utf8'); } catch {}
const conf = input ? JSON.parse(input) : null;
const cmd = process.env.CNI_COMMAND;
fs.appendFileSync(${JSON.stringify(this.log)}, JSON.stringify({ type: TYPE, cmd, env: process.env, conf }) + '\\n');
const f = B.fail && B.fail[cmd];
if (f) {
  if (f.stderr !== undefined) { process.stderr.write(f.stderr); process.exit(f.exit ?? 1); }
  process.stdout.write(JSON.stringify({ cniVersion: conf && conf.cniVersion, code: f.code, msg: f.msg, details: f.details }));
  process.exit(1);
}
if (cmd === 'VERSION') { process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] })); }
else if (cmd === 'ADD') {
  const r = conf.prevResult ? JSON.parse(JSON.stringify(conf.prevResult)) : { cniVersion: conf.cniVersion };
  r.interfaces = (r.interfaces || []).concat([{ name: TYPE + '-' + process.env.CNI_IFNAME }]);
  if (B.ip) r.ips = (r.ips || []).concat([B.answerVersion && B.answerVersion < '1.0.0' ? { version: '4', address: B.ip } : { address: B.ip }]);
  r.cniVersion = B.answerVersion || conf.cniVersion;
  process.stdout.write(JSON.stringify(r));
}
`);
    chmodSync(p, 0o755);
  }

  calls(): Call[] {
    if (!existsSync(this.log)) return [];
    return readFileSync(this.log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
  reset(): void { rmSync(this.log, { force: true }); }
  seq(): string[] { return this.calls().map((c) => `${c.cmd} ${c.type}`); }
  runtime(extra: Partial<ConstructorParameters<typeof CniRuntime>[0]> = {}): CniRuntime {
    return new CniRuntime({ pluginDirs: [join(this.dir, 'nothing-here'), this.bin], cacheDir: join(this.dir, 'cache'), path: '/usr/bin:/bin', ...extra });
  }
  cleanup(): void { rmSync(this.dir, { recursive: true, force: true }); }
}

const withFakes = (fn: (f: Fakes) => Promise<void>) => async () => {
  const f = new Fakes();
  try { await fn(f); } finally { f.cleanup(); }
};

const mkList = (plugins: object[], extra: object = {}): NetworkConfigList =>
  confListFromObject({ cniVersion: '1.0.0', name: 'fakenet', plugins, ...extra });

const rt = { containerId: 'c1', netns: '/run/netns/c1', ifname: 'eth0', args: [['K8S_POD_NAME', 'web'], ['IgnoreUnknown', '1']] as [string, string][] };

test('ADD: minimal environment, injected config, chained prevResult, runtimeConfig by capability', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.2/24' });
  f.plugin('b');
  const list = mkList([{ type: 'a', capabilities: { portMappings: true } }, { type: 'b', capabilities: { bandwidth: true }, knob: 3 }]);
  const result = await f.runtime().addNetworkList(list, { ...rt, capabilityArgs: { portMappings: [{ hostPort: 80 }], mac: 'x' } });
  assert.deepEqual(result.ips, [{ address: '10.0.0.2/24' }]);
  assert.deepEqual(result.interfaces!.map((i) => i.name), ['a-eth0', 'b-eth0']);
  const [ca, cb] = f.calls();
  assert.deepEqual(Object.keys(ca.env).sort(), ['CNI_ARGS', 'CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_PATH', 'PATH']);
  assert.equal(ca.env.PATH, '/usr/bin:/bin');
  assert.equal(ca.env.CNI_ARGS, 'K8S_POD_NAME=web;IgnoreUnknown=1');
  assert.equal(ca.env.CNI_PATH, `${join(f.dir, 'nothing-here')}:${f.bin}`);
  assert.equal(ca.env.CNI_NETNS, '/run/netns/c1');
  assert.deepEqual(ca.conf, { type: 'a', name: 'fakenet', cniVersion: '1.0.0', runtimeConfig: { portMappings: [{ hostPort: 80 }] } });
  assert.equal(cb.conf.knob, 3);
  assert.equal('runtimeConfig' in cb.conf, false);
  assert.equal('capabilities' in cb.conf, false);
  assert.deepEqual(cb.conf.prevResult.interfaces, [{ name: 'a-eth0' }]);
}));

test('ADD caches the final result in the libcni layout; getCachedResult and listCachedAttachments read it', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.3/24' });
  const list = mkList([{ type: 'a' }]);
  const r = f.runtime();
  await r.addNetworkList(list, { ...rt, capabilityArgs: { portMappings: [] } });
  const file = join(f.dir, 'cache', 'results', 'fakenet-c1-eth0');
  const entry = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(entry.kind, 'cniCacheV1');
  assert.equal(entry.containerId, 'c1');
  assert.equal(entry.ifName, 'eth0');
  assert.equal(entry.networkName, 'fakenet');
  assert.equal(entry.netns, '/run/netns/c1');
  assert.equal(Buffer.from(entry.config, 'base64').toString('utf8'), list.bytes);
  assert.deepEqual(entry.cniArgs, rt.args);
  assert.deepEqual(entry.capabilityArgs, { portMappings: [] });
  assert.deepEqual(entry.result.ips, [{ address: '10.0.0.3/24' }]);
  assert.deepEqual((await r.getCachedResult('fakenet', 'c1', 'eth0'))!.ips, [{ address: '10.0.0.3/24' }]);
  assert.equal(await r.getCachedResult('fakenet', 'c1', 'eth1'), null);
  const atts = await r.listCachedAttachments('fakenet');
  assert.deepEqual(atts.map((a) => [a.containerId, a.ifname, a.netns]), [['c1', 'eth0', '/run/netns/c1']]);
  assert.deepEqual(await r.listCachedAttachments('othernet'), []);
}));

test('a plugin answering in another version is converted to the list version', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.4/24', answerVersion: '0.4.0' });
  f.plugin('b');
  const res = await f.runtime().addNetworkList(mkList([{ type: 'a' }, { type: 'b' }]), rt);
  assert.equal(res.cniVersion, '1.0.0');
  assert.deepEqual(f.calls()[1].conf.prevResult.ips, [{ address: '10.0.0.4/24' }]);
}));

test('a failing ADD rolls back in reverse order, throws the plugin error and caches nothing', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.5/24' });
  f.plugin('b', { fail: { ADD: { code: 7, msg: 'bad knob', details: 'knob must be 1' } } });
  f.plugin('c');
  const list = mkList([{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
  await assert.rejects(f.runtime().addNetworkList(list, rt), (e: any) => {
    assert.equal(e.code, 7);
    assert.match(e.message, /plugin b failed \(ADD\): bad knob/);
    assert.equal(e.details, 'knob must be 1');
    return true;
  });
  assert.deepEqual(f.seq(), ['ADD a', 'ADD b', 'DEL b', 'DEL a']);
  assert.deepEqual(f.calls()[3].conf.prevResult.ips, [{ address: '10.0.0.5/24' }]);
  assert.equal(existsSync(join(f.dir, 'cache', 'results', 'fakenet-c1-eth0')), false);
}));

test('an error without a JSON body is code 999 and carries stderr; a missing plugin is 999 too', withFakes(async (f) => {
  f.plugin('a', { fail: { ADD: { stderr: 'segfault in the frobnicator', exit: 2 } } });
  const list = mkList([{ type: 'a' }]);
  await assert.rejects(f.runtime().addNetworkList(list, rt), (e: any) =>
    e.code === 999 && /plugin a failed \(ADD\): exit status 2: segfault in the frobnicator/.test(e.message));
  await assert.rejects(f.runtime().addNetworkList(mkList([{ type: 'nope' }]), rt), (e: any) =>
    e.code === 999 && /failed to find plugin "nope"/.test(e.message));
}));

test('invalid attachment parameters are rejected before any plugin runs', withFakes(async (f) => {
  f.plugin('a');
  const list = mkList([{ type: 'a' }]);
  const r = f.runtime();
  await assert.rejects(async () => r.addNetworkList(list, { ...rt, containerId: '../x' }), (e: any) => e.code === 4);
  await assert.rejects(async () => r.addNetworkList(list, { ...rt, ifname: 'a-very-long-ifname' }), (e: any) => e.code === 4);
  await assert.rejects(async () => r.addNetworkList(list, { ...rt, args: [['A;B', '1']] }), (e: any) => e.code === 4);
  assert.deepEqual(f.seq(), []);
}));

test('DEL: reverse order with the cached prevResult, keeps going past errors, cache removed only on success', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.6/24' });
  f.plugin('b');
  const list = mkList([{ type: 'a' }, { type: 'b' }]);
  const r = f.runtime();
  await r.addNetworkList(list, rt);
  f.reset();
  f.plugin('b', { fail: { DEL: { code: 11, msg: 'busy' } } });
  await assert.rejects(r.delNetworkList(list, rt), (e: any) => e instanceof CniAggregateError && e.code === 11 && /busy/.test(e.message));
  assert.deepEqual(f.seq(), ['DEL b', 'DEL a']);
  assert.deepEqual(f.calls()[1].conf.prevResult.ips, [{ address: '10.0.0.6/24' }]);
  assert.ok(await r.getCachedResult('fakenet', 'c1', 'eth0'));
  f.plugin('b');
  f.reset();
  await r.delNetworkList(list, rt);
  assert.equal(await r.getCachedResult('fakenet', 'c1', 'eth0'), null);
  f.reset();
  await r.delNetworkList(list, rt); // no cache: plugins still called, without prevResult
  assert.deepEqual(f.seq(), ['DEL b', 'DEL a']);
  assert.equal('prevResult' in f.calls()[0].conf, false);
}));

test('DEL of a 0.3.1 list sends no prevResult', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.7/24' });
  const list = confListFromObject({ cniVersion: '0.3.1', name: 'old', plugins: [{ type: 'a' }] });
  const r = f.runtime();
  await r.addNetworkList(list, rt);
  f.reset();
  await r.delNetworkList(list, rt);
  assert.equal('prevResult' in f.calls()[0].conf, false);
  assert.equal(await r.getCachedResult('old', 'c1', 'eth0'), null);
}));

test('CHECK: cached prevResult in order; no cache is code 3; disableCheck skips; < 0.4.0 is code 1', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.8/24' });
  f.plugin('b', { fail: { CHECK: { code: 101, msg: 'route missing' } } });
  const r = f.runtime();
  const list = mkList([{ type: 'a' }, { type: 'b' }]);
  await assert.rejects(r.checkNetworkList(list, rt), (e: any) => e.code === 3 && /CHECK needs a previous ADD/.test(e.message));
  await r.addNetworkList(list, rt);
  f.reset();
  await assert.rejects(r.checkNetworkList(list, rt), (e: any) => e.code === 101 && /plugin b failed \(CHECK\): route missing/.test(e.message));
  assert.deepEqual(f.seq(), ['CHECK a', 'CHECK b']);
  assert.deepEqual(f.calls()[0].conf.prevResult.ips, [{ address: '10.0.0.8/24' }]);
  f.reset();
  await r.checkNetworkList(mkList([{ type: 'a' }, { type: 'b' }], { disableCheck: true }), rt);
  assert.deepEqual(f.seq(), []);
  const old = confListFromObject({ cniVersion: '0.3.1', name: 'fakenet', plugins: [{ type: 'a' }] });
  await assert.rejects(r.checkNetworkList(old, rt), (e: any) => e.code === 1 && /does not support the CHECK command/.test(e.message));
}));

test('GC (1.1.0): stale cached attachments get DEL, then GC with valid-attachments and no attachment env', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.9/24' });
  f.plugin('b');
  const list = mkList([{ type: 'a' }, { type: 'b' }], { cniVersion: '1.1.0' });
  const r = f.runtime();
  await r.addNetworkList(list, { ...rt, containerId: 'keep' });
  await r.addNetworkList(list, { ...rt, containerId: 'stale', netns: '/run/netns/stale' });
  f.reset();
  await r.gcNetworkList(list, [{ containerId: 'keep', ifname: 'eth0' }]);
  assert.deepEqual(f.seq(), ['DEL b', 'DEL a', 'GC a', 'GC b']);
  const [delB, , gcA] = f.calls();
  assert.equal(delB.env.CNI_CONTAINERID, 'stale');
  assert.equal(delB.env.CNI_NETNS, '/run/netns/stale');
  assert.equal(delB.env.CNI_ARGS, 'K8S_POD_NAME=web;IgnoreUnknown=1');
  assert.deepEqual(Object.keys(gcA.env).sort(), ['CNI_COMMAND', 'CNI_PATH', 'PATH']);
  assert.deepEqual(gcA.conf['cni.dev/valid-attachments'], [{ containerID: 'keep', ifname: 'eth0' }]);
  assert.equal(gcA.conf.name, 'fakenet');
  assert.deepEqual((await r.listCachedAttachments('fakenet')).map((a) => a.containerId), ['keep']);
}));

test('GC (1.0.0) only deletes stale attachments; disableGC does nothing; GC errors are aggregated', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.10/24' });
  const r = f.runtime();
  const list = mkList([{ type: 'a' }]);
  await r.addNetworkList(list, rt);
  f.reset();
  await r.gcNetworkList(mkList([{ type: 'a' }], { disableGC: true }), []);
  assert.deepEqual(f.seq(), []);
  await r.gcNetworkList(list, []);
  assert.deepEqual(f.seq(), ['DEL a']);
  assert.deepEqual(await r.listCachedAttachments('fakenet'), []);
  f.plugin('a', { fail: { GC: { code: 100, msg: 'store locked' } } });
  const v11 = mkList([{ type: 'a' }], { cniVersion: '1.1.0' });
  await assert.rejects(r.gcNetworkList(v11, []), (e: any) => e instanceof CniAggregateError && e.code === 100 && /store locked/.test(e.message));
}));

test('STATUS runs for 1.1.0 lists only and passes the plugin code through', withFakes(async (f) => {
  f.plugin('a');
  f.plugin('b', { fail: { STATUS: { code: 50, msg: 'not ready' } } });
  const r = f.runtime();
  await r.getStatusNetworkList(mkList([{ type: 'a' }, { type: 'b' }]));
  assert.deepEqual(f.seq(), []);
  await assert.rejects(r.getStatusNetworkList(mkList([{ type: 'a' }, { type: 'b' }], { cniVersion: '1.1.0' })), (e: any) => e.code === 50);
  assert.deepEqual(f.seq(), ['STATUS a', 'STATUS b']);
  assert.deepEqual(Object.keys(f.calls()[0].env).sort(), ['CNI_COMMAND', 'CNI_PATH', 'PATH']);
}));

test('VERSION returns supportedVersions', withFakes(async (f) => {
  f.plugin('a');
  assert.deepEqual(await f.runtime().version('a'), ['0.4.0', '1.0.0', '1.1.0']);
}));

test('wrap prefixes the plugin command line', withFakes(async (f) => {
  f.plugin('a');
  await execPlugin({ pluginDirs: [f.bin], wrap: ['env', 'WRAPPED_BY=env'] }, 'a', { command: 'DEL', containerId: 'x', ifname: 'eth0' }, { cniVersion: '1.0.0', name: 'n', type: 'a' });
  assert.equal(f.calls()[0].env.WRAPPED_BY, 'env');
  await assert.rejects(
    execPlugin({ pluginDirs: [f.bin], wrap: ['/nonexistent/wrapper'] }, 'a', { command: 'VERSION' }, {}),
    (e: any) => e.code === 999 && /cannot start \/nonexistent\/wrapper/.test(e.message));
}));

test('operations on one container run one at a time', withFakes(async (f) => {
  f.plugin('a', { ip: '10.0.0.11/24' });
  const r = f.runtime();
  const list = mkList([{ type: 'a' }]);
  await Promise.all([r.addNetworkList(list, rt), r.delNetworkList(list, rt), r.addNetworkList(list, { ...rt, ifname: 'eth1' })]);
  assert.deepEqual(f.calls().map((c) => `${c.cmd} ${c.env.CNI_IFNAME}`), ['ADD eth0', 'DEL eth0', 'ADD eth1']);
}));
