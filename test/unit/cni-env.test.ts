import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCniArgs, readEnv } from '../../src/cni/env.js';

const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const code4 = (field: RegExp) => (e: any) => e.code === 4 && field.test(e.message);

test('a complete ADD environment is read', () => {
  const env = readEnv({ ...base, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.244.1.9' });
  assert.equal(env.command, 'ADD');
  assert.equal(env.args.get('IP'), '10.244.1.9');
  assert.deepEqual(env.path, ['/opt/cni/bin']);
});

test('missing or bad variables are code 4 and name the variable', () => {
  assert.throws(() => readEnv({}), code4(/CNI_COMMAND/));
  assert.throws(() => readEnv({ ...base, CNI_COMMAND: 'FROB' }), code4(/CNI_COMMAND "FROB"/));
  assert.throws(() => readEnv({ ...base, CNI_CONTAINERID: '' }), code4(/CNI_CONTAINERID/));
  assert.throws(() => readEnv({ ...base, CNI_CONTAINERID: '-bad/id' }), code4(/CNI_CONTAINERID "-bad\/id"/));
  assert.throws(() => readEnv({ ...base, CNI_IFNAME: 'averyveryverylongname' }), code4(/CNI_IFNAME "averyveryverylongname" is 21 characters/));
  assert.throws(() => readEnv({ ...base, CNI_IFNAME: 'eth/0' }), code4(/CNI_IFNAME/));
  assert.throws(() => readEnv({ ...base, CNI_NETNS: '' }), code4(/CNI_NETNS/));
  assert.throws(() => readEnv({ ...base, CNI_ARGS: 'novalue' }), code4(/CNI_ARGS/));
});

test('DEL accepts an empty CNI_NETNS (ctr sends one)', () => {
  assert.equal(readEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, '');
});

test('VERSION, STATUS and GC need no container variables', () => {
  for (const c of ['VERSION', 'STATUS', 'GC']) assert.equal(readEnv({ CNI_COMMAND: c }).command, c);
});

test('CNI_ARGS keeps values with "=" in them', () => {
  assert.equal(parseCniArgs('A=b=c').get('A'), 'b=c');
});
