// The lab through its command line, as a user drives it: nodes and pods come and go, pods reach
// each other, and `lab down` leaves no namespace or file behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestScope } from '../helpers/scope.js';

const CLI = fileURLToPath(new URL('../../bin/flatnet.mjs', import.meta.url));
const scope = new TestScope('lab');
const lab = scope.prefix;
const stateDir = join(scope.dir, 'state');
const flatnet = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, '--lab', lab, '--state-dir', stateDir, ...args], { encoding: 'utf8' });
const netnses = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`${lab}-`));
scope.onCleanup(() => { flatnet('lab', 'down'); });
after(() => scope.cleanupSync());

test('nodes and pods come and go through the CLI; pods reach each other; lab down removes all', () => {
  let r = flatnet('lab', 'node', 'add', 'node1', '--pod-cidr', '10.81.1.0/24');
  assert.equal(r.status, 0, r.stderr);
  for (const ns of [`${lab}-node1`, `${lab}-pod-web`, `${lab}-pod-client`]) scope.adoptNetns(ns);
  r = flatnet('lab', 'pod', 'add', 'web', '--node', 'node1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /IP 10\.81\.1\.\d+\/24/);
  const webIp = /IP (10\.81\.1\.\d+)/.exec(r.stdout)![1];
  assert.equal(flatnet('lab', 'pod', 'add', 'client', '--node', 'node1').status, 0);

  const status = flatnet('lab', 'status').stdout;
  assert.match(status, /node1\s+\S+node1\s+10\.81\.1\.0\/24/);
  assert.match(status, new RegExp(`web\\s+node1\\s+\\S+\\s+${webIp.replace(/\./g, '\\.')}/24`));

  r = flatnet('exec', 'client', '--', 'ping', '-c', '1', '-W', '2', webIp);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  r = flatnet('exec', 'client', '--', 'ping', '-c', '1', '-W', '1', '10.81.1.250');
  assert.notEqual(r.status, 0, 'exec passes the command\'s own failure through');

  // The node keeps its conf dir, plugin dir, IPAM data and result cache under its own directory.
  const nodeDir = join(stateDir, lab, 'node-data', 'node1');
  assert.ok(existsSync(join(nodeDir, 'net.d', '10-flatnet.conflist')));
  assert.ok(readdirSync(join(nodeDir, 'ipam', 'flatnet')).includes(webIp));
  assert.equal(readdirSync(join(nodeDir, 'cache', 'results')).length, 2);

  assert.equal(flatnet('lab', 'pod', 'rm', 'web').status, 0);
  assert.ok(!readdirSync(join(nodeDir, 'ipam', 'flatnet')).includes(webIp), 'the address is released');
  assert.ok(!netnses().includes(`${lab}-pod-web`));

  r = flatnet('lab', 'pod', 'add', 'ghost', '--node', 'nope');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /node "nope" does not exist/);

  // Default pod CIDRs never collide, also after a node is removed.
  for (const n of ['node2', 'node3', 'node4']) scope.adoptNetns(`${lab}-${n}`);
  assert.match(flatnet('lab', 'node', 'add', 'node2').stdout, /pod CIDR 10\.244\.1\.0\/24/);
  assert.match(flatnet('lab', 'node', 'add', 'node3').stdout, /pod CIDR 10\.244\.2\.0\/24/);
  assert.equal(flatnet('lab', 'node', 'rm', 'node2').status, 0);
  assert.match(flatnet('lab', 'node', 'add', 'node4').stdout, /pod CIDR 10\.244\.1\.0\/24/);

  assert.equal(flatnet('lab', 'down').status, 0);
  assert.deepEqual(netnses(), []);
  assert.ok(!existsSync(join(stateDir, lab)));
});

test('the demo shows two pods pinging each other and removes its lab', () => {
  const before = new Set(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n'));
  const r = spawnSync(process.execPath, [CLI, '--state-dir', stateDir, 'demo'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /alpha -> beta \(10\.244\.1\.\d+\): ok/);
  assert.match(r.stdout, /beta -> alpha \(10\.244\.1\.\d+\): ok/);
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('demo-') && !before.has(l));
  assert.deepEqual(left, []);
});
