import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asCniResult, compareVersions, convertResult, versionAtLeast } from '../../src/runtime/result.js';

test('versions compare numerically', () => {
  assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
  assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
  assert.ok(versionAtLeast('1.1.0', '0.4.0'));
  assert.ok(!versionAtLeast('0.3.1', '0.4.0'));
  assert.throws(() => compareVersions('1.0', '1.0.0'), (e: any) => e.code === 1);
});

const v1 = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', sandbox: '/run/netns/p' }],
  ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }, { address: 'fd00::5/64', interface: 0 }],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
  dns: { nameservers: ['10.1.0.1'] },
};

test('1.0.0 to 0.4.0 adds ips[].version, and back removes it', () => {
  const r = convertResult(v1, '0.4.0');
  assert.equal(r.cniVersion, '0.4.0');
  assert.deepEqual((r.ips as any[]).map((i) => i.version), ['4', '6']);
  assert.deepEqual(convertResult(r, '1.0.0'), v1);
});

test('1.0.0 to 0.2.0 keeps the first address per family with its routes', () => {
  const r = convertResult(v1, '0.2.0');
  assert.deepEqual(r, {
    cniVersion: '0.2.0',
    ip4: { ip: '10.1.0.5/24', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] },
    ip6: { ip: 'fd00::5/64', routes: [{ dst: '::/0', gw: 'fd00::1' }] },
    dns: { nameservers: ['10.1.0.1'] },
  });
  const back = convertResult(r, '1.1.0');
  assert.deepEqual(back.ips, [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }, { address: 'fd00::5/64' }]);
  assert.equal(back.cniVersion, '1.1.0');
});

test('same version is a copy; unknown versions are code 1', () => {
  const r = convertResult(v1, '1.0.0');
  assert.deepEqual(r, v1);
  assert.notEqual(r, v1);
  assert.throws(() => convertResult(v1, '2.0.0'), (e: any) => e.code === 1);
  assert.throws(() => convertResult('x', '1.0.0'), (e: any) => e.code === 6);
});

test('asCniResult leaves 0.3+ results alone and lifts legacy ones', () => {
  assert.deepEqual(asCniResult(v1), v1);
  const legacy = asCniResult({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/8' } });
  assert.deepEqual(legacy.ips, [{ address: '10.0.0.2/8' }]);
});
