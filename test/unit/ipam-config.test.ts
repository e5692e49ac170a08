// parseIpamConf: host-local's keys, its defaults, and an error for every way a range can be wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpamConf, DEFAULT_DATA_DIR } from '../../src/ipam/config.js';
import { CniCode } from '../../src/cni/errors.js';
import { throwsCni } from '../helpers/assert-cni.js';

const parse = (ipam: unknown) => parseIpamConf(ipam, 'net1');
const v4 = (extra: Record<string, unknown> = {}) => ({ ranges: [[{ subnet: '10.244.1.0/24', ...extra }]] });

/** Asserts InvalidConfig and that the message names every fragment given. */
function rejects(ipam: unknown, ...fragments: string[]): void {
  throwsCni(() => parse(ipam), CniCode.InvalidConfig, ...fragments);
}

test('IPv4 defaults are host-local\'s: gateway and start at .1, end before broadcast', () => {
  const p = parse(v4());
  assert.deepEqual(p.rangeSets, [[{
    subnet: '10.244.1.0/24', prefixLength: 24, version: 4,
    rangeStart: '10.244.1.1', rangeEnd: '10.244.1.254', gateway: '10.244.1.1',
  }]]);
  assert.deepEqual(p.routes, []);
  assert.equal(p.dataDir, DEFAULT_DATA_DIR);
  assert.equal(DEFAULT_DATA_DIR, '/run/flatnet/networks');
});

test('IPv6 is canonicalised (compressed, lowercase) and ends at the last address', () => {
  const p = parse({ ranges: [[{ subnet: 'FD00:0:0:0::/64', gateway: 'fd00:0::00FE' }]] });
  assert.deepEqual(p.rangeSets[0][0], {
    subnet: 'fd00::/64', prefixLength: 64, version: 6,
    rangeStart: 'fd00::1', rangeEnd: 'fd00::ffff:ffff:ffff:ffff', gateway: 'fd00::fe',
  });
});

test('explicit bounds, gateway, routes, dataDir and type are kept', () => {
  const p = parse({
    type: 'host-local', dataDir: '/var/lib/x',
    ranges: [[{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.10', rangeEnd: '10.244.1.20', gateway: '10.244.1.254' }]],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '10.96.0.0/12', gw: '10.244.1.254' }, { dst: '::/0', gw: 'FD00::1' }],
  });
  assert.equal(p.dataDir, '/var/lib/x');
  assert.deepEqual(p.rangeSets[0][0], {
    subnet: '10.244.1.0/24', prefixLength: 24, version: 4,
    rangeStart: '10.244.1.10', rangeEnd: '10.244.1.20', gateway: '10.244.1.254',
  });
  assert.deepEqual(p.routes, [{ dst: '0.0.0.0/0' }, { dst: '10.96.0.0/12', gw: '10.244.1.254' }, { dst: '::/0', gw: 'fd00::1' }]);
  assert.equal(parse({ ...v4(), type: 'flatnet-cni' }).rangeSets.length, 1);
});

test('legacy single range at the top level of ipam is one range set, placed first', () => {
  const p = parse({ subnet: '10.22.0.0/16', rangeStart: '10.22.0.10', gateway: '10.22.0.1' });
  assert.deepEqual(p.rangeSets, [[{
    subnet: '10.22.0.0/16', prefixLength: 16, version: 4,
    rangeStart: '10.22.0.10', rangeEnd: '10.22.255.254', gateway: '10.22.0.1',
  }]]);
  const both = parse({ subnet: '10.22.0.0/16', ranges: [[{ subnet: 'fd00::/64' }]] });
  assert.deepEqual(both.rangeSets.map((s) => s[0].subnet), ['10.22.0.0/16', 'fd00::/64']);
  rejects({ subnet: '10.22.0.1/16' }, 'ipam.subnet', '"10.22.0.1/16"', 'host bits');
});

test('dual stack: two range sets, one per family; a set may hold several ranges of its family', () => {
  const p = parse({ ranges: [
    [{ subnet: '10.244.1.0/24' }, { subnet: '10.245.1.0/24' }],
    [{ subnet: 'fd00:10:244:1::/64' }],
  ] });
  assert.equal(p.rangeSets.length, 2);
  assert.deepEqual(p.rangeSets[0].map((r) => r.version), [4, 4]);
  assert.equal(p.rangeSets[1][0].version, 6);
  assert.equal(p.rangeSets[1][0].subnet, 'fd00:10:244:1::/64');
});

test('ipam itself, type and dataDir', () => {
  rejects(null, 'ipam', 'expected an object');
  rejects('host-local', 'ipam', '"host-local"');
  rejects({ ...v4(), type: 'dhcp' }, 'ipam.type', '"dhcp"');
  rejects({ ...v4(), dataDir: 'relative/dir' }, 'ipam.dataDir', '"relative/dir"', 'absolute');
  rejects({ ...v4(), dataDir: 7 }, 'ipam.dataDir', '7');
  assert.throws(() => parseIpamConf(v4(), '..'), /name/);
});

test('missing or empty ranges name ipam.ranges', () => {
  rejects({}, 'ipam.ranges');
  rejects({ ranges: [] }, 'ipam.ranges');
  rejects({ ranges: {} }, 'ipam.ranges', '{}');
  rejects({ ranges: [[]] }, 'ipam.ranges[0]', 'non-empty');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24' }], 'x'] }, 'ipam.ranges[1]', '"x"');
  rejects({ ranges: [[5]] }, 'ipam.ranges[0][0]', '5');
});

test('subnet: missing, unparsable, host bits, too small', () => {
  rejects({ ranges: [[{}]] }, 'ipam.ranges[0][0].subnet', 'missing');
  rejects({ ranges: [[{ subnet: 42 }]] }, 'ipam.ranges[0][0].subnet', '42');
  for (const bad of ['10.244.1.0', '10.244.1.0/33', '10.244.1/24', 'fd00::/129', 'nope/8', '10.244.1.0/-1', 'fe80::%eth0/64']) {
    rejects({ ranges: [[{ subnet: bad }]] }, 'ipam.ranges[0][0].subnet', JSON.stringify(bad), 'not a valid CIDR');
  }
  rejects({ ranges: [[{ subnet: '10.244.1.5/24' }]] },
    'ipam.ranges[0][0].subnet: "10.244.1.5/24" has host bits set (network is 10.244.1.0/24)');
  rejects({ ranges: [[{ subnet: 'fd00::1/64' }]] }, 'ipam.ranges[0][0].subnet', '"fd00::1/64"', 'network is fd00::/64');
  for (const small of ['10.0.0.0/31', '10.0.0.0/32', 'fd00::/127', 'fd00::/128']) {
    rejects({ ranges: [[{ subnet: small }]] }, 'ipam.ranges[0][0].subnet', JSON.stringify(small), 'too small');
  }
  assert.equal(parse({ ranges: [[{ subnet: '10.0.0.0/30' }]] }).rangeSets[0][0].rangeEnd, '10.0.0.2');
});

test('rangeStart, rangeEnd, gateway: valid, same family, inside the subnet, start <= end', () => {
  for (const key of ['rangeStart', 'rangeEnd', 'gateway']) {
    const path = `ipam.ranges[0][0].${key}`;
    rejects(v4({ [key]: '10.244.1' }), path, '"10.244.1"', 'not a valid IP');
    rejects(v4({ [key]: 17 }), path, '17');
    rejects(v4({ [key]: '10.244.2.1' }), path, '"10.244.2.1"', 'outside subnet 10.244.1.0/24');
    rejects(v4({ [key]: 'fd00::1' }), path, '"fd00::1"', 'IPv6', 'IPv4');
  }
  rejects(v4({ rangeStart: '10.244.1.200', rangeEnd: '10.244.1.100' }),
    'ipam.ranges[0][0].rangeStart', '10.244.1.200', 'after rangeEnd 10.244.1.100');
  rejects(v4({ rangeStart: '10.244.1.1', rangeEnd: '10.244.1.1' }), 'ipam.ranges[0][0]', '10.244.1.1-10.244.1.1', 'no allocatable address');
  rejects(v4({ rangeStart: '10.244.1.254', rangeEnd: '10.244.1.255', gateway: '10.244.1.254' }), 'ipam.ranges[0][0]', 'no allocatable');
  const one = parse(v4({ rangeStart: '10.244.1.7', rangeEnd: '10.244.1.7' }));
  assert.equal(one.rangeSets[0][0].rangeStart, '10.244.1.7');
});

test('one range set holds one family', () => {
  rejects({ ranges: [[{ subnet: '10.244.1.0/24' }, { subnet: 'fd00::/64' }]] },
    'ipam.ranges[0][1].subnet', '"fd00::/64"', 'IPv6', 'ipam.ranges[0][0]', 'IPv4');
});

test('overlapping ranges are refused, within a set and across sets, naming both', () => {
  rejects({ ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: '10.244.1.0/25' }]] },
    'ipam.ranges[1][0] (10.244.1.0/25, 10.244.1.1-10.244.1.126)', 'ipam.ranges[0][0] (10.244.1.0/24, 10.244.1.1-10.244.1.254)');
  rejects({ ranges: [[{ subnet: '10.244.0.0/16' }, { subnet: '10.244.7.0/24' }]] }, 'ipam.ranges[0][1]', 'ipam.ranges[0][0]');
  rejects({ subnet: 'fd00::/64', ranges: [[{ subnet: 'fd00::/48' }]] }, 'ipam.ranges[0][0]', 'overlaps ipam (fd00::/64');
  // Disjoint slices of one subnet do not overlap (host-local allows that too).
  const p = parse({ ranges: [
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.1', rangeEnd: '10.244.1.100' }],
    [{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.101', rangeEnd: '10.244.1.200' }],
  ] });
  assert.equal(p.rangeSets.length, 2);
});

test('routes: dst a CIDR without host bits, gw an address of the same family', () => {
  rejects({ ...v4(), routes: {} }, 'ipam.routes', '{}');
  rejects({ ...v4(), routes: ['0.0.0.0/0'] }, 'ipam.routes[0]', '"0.0.0.0/0"');
  rejects({ ...v4(), routes: [{ dst: '0.0.0.0' }] }, 'ipam.routes[0].dst', '"0.0.0.0"', 'not a valid CIDR');
  rejects({ ...v4(), routes: [{ dst: '0.0.0.0/0' }, {}] }, 'ipam.routes[1].dst', 'undefined');
  rejects({ ...v4(), routes: [{ dst: '10.96.0.1/12' }] }, 'ipam.routes[0].dst', '"10.96.0.1/12"', 'network is 10.96.0.0/12');
  rejects({ ...v4(), routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.300' }] }, 'ipam.routes[0].gw', '"10.244.1.300"', 'not a valid IP');
  rejects({ ...v4(), routes: [{ dst: '0.0.0.0/0', gw: 'fd00::1' }] }, 'ipam.routes[0].gw', '"fd00::1"', 'IPv6');
});
