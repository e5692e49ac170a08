import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resultFromJson, resultToVersion, SUPPORTED_VERSIONS, compareVersions } from '../../src/cni/version.js';
import type { CniResult } from '../../src/cni/types.js';

const result: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:f4:01:01', mtu: 1500 },
    { name: 'fn0123456789ab', mac: '02:11:22:33:44:55', mtu: 1500 },
    { name: 'eth0', mac: '0a:58:0a:f4:01:05', mtu: 1500, sandbox: '/run/netns/p1' },
  ],
  ips: [
    { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 2 },
    { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 2 },
  ],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '10.96.0.0/12', gw: '10.244.1.1', priority: 10 }],
  dns: {},
};

test('a 1.1.0 result keeps interface mtu and route extras', () => {
  const out = resultToVersion(result, '1.1.0') as any;
  assert.equal(out.cniVersion, '1.1.0');
  assert.equal(out.interfaces[2].mtu, 1500);
  assert.equal(out.routes[1].priority, 10);
  assert.equal(out.ips[0].version, undefined);
});

test('a 1.0.0 result drops the fields 1.1.0 added and has no ip version', () => {
  const out = resultToVersion(result, '1.0.0') as any;
  assert.equal(out.cniVersion, '1.0.0');
  assert.deepEqual(out.interfaces[2], { name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: '/run/netns/p1' });
  assert.deepEqual(out.routes[1], { dst: '10.96.0.0/12', gw: '10.244.1.1' });
  assert.deepEqual(out.ips[0], { interface: 2, address: '10.244.1.5/24', gateway: '10.244.1.1' });
});

for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
  test(`a ${v} result carries the ip version field`, () => {
    const out = resultToVersion(result, v) as any;
    assert.equal(out.cniVersion, v);
    assert.equal(out.ips[0].version, '4');
    assert.equal(out.ips[1].version, '6');
    assert.equal(out.interfaces[0].mtu, undefined);
  });
}

test('every supported version round-trips through prevResult', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const back = resultFromJson(JSON.parse(JSON.stringify(resultToVersion(result, v))), v);
    assert.deepEqual(back.ips?.map((i) => i.address), ['10.244.1.5/24', 'fd00:10:244:1::5/64']);
    assert.equal(back.interfaces?.[2]?.sandbox, '/run/netns/p1');
  }
});

test('a malformed prevResult is a decode error naming the field', () => {
  assert.throws(() => resultFromJson({ ips: [{ address: 5 }] }, '1.0.0'), (e: any) => e.code === 6 && /prevResult\.ips\[0\]\.address/.test(e.message));
  assert.throws(() => resultFromJson('x', '1.0.0'), (e: any) => e.code === 6);
});

test('versions compare numerically', () => {
  assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
  assert.ok(compareVersions('1.0.0', '1.1.0') < 0);
  assert.equal(compareVersions('0.3.1', '0.3.1'), 0);
});
