// The allocator on MemoryStore: host-local's round-robin, requested addresses, dual stack, rollback, GC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocate, findAttachment, gcAttachments, releaseAttachment } from '../../src/ipam/allocator.js';
import { parseIpamConf } from '../../src/ipam/config.js';
import { MemoryStore } from '../../src/ipam/memory-store.js';
import { CniCode } from '../../src/cni/errors.js';
import type { Attachment } from '../../src/ipam/types.js';
import { rejectsCni } from '../helpers/assert-cni.js';

const conf = (ranges: unknown) => parseIpamConf({ ranges }, 'net1');
const att = (containerId: string, ifname = 'eth0'): Attachment => ({ containerId, ifname });
const ips = async (store: MemoryStore, ipam: ReturnType<typeof conf>, a: Attachment, req: string[] = []) =>
  (await allocate(store, ipam, a, req)).map((x) => x.ip);


test('first allocation skips the gateway and returns a full Allocation under the lock', async () => {
  const store = new MemoryStore();
  const allocs = await allocate(store, conf([[{ subnet: '10.244.1.0/24' }]]), att('c1'), []);
  assert.deepEqual(allocs, [{ address: '10.244.1.2/24', ip: '10.244.1.2', gateway: '10.244.1.1', version: 4, rangeSetIndex: 0, reused: false }]);
  assert.equal(store.lockCount, 1);
  assert.equal(store.lastReserved(0), '10.244.1.2');
});

test('round-robin: a released address is not handed out again at once', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24' }]]);
  assert.deepEqual(await ips(store, ipam, att('a')), ['10.244.1.2']);
  assert.deepEqual(await ips(store, ipam, att('b')), ['10.244.1.3']);
  assert.deepEqual(await releaseAttachment(store, att('a')), ['10.244.1.2']);
  assert.deepEqual(await ips(store, ipam, att('c')), ['10.244.1.4']);
});

test('round-robin wraps around at the end of the range and skips taken addresses', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.10', rangeEnd: '10.244.1.12' }]]);
  const firsts: string[] = [];
  for (const id of ['a', 'b', 'c']) firsts.push((await ips(store, ipam, att(id)))[0]);
  assert.deepEqual(firsts, ['10.244.1.10', '10.244.1.11', '10.244.1.12']);
  await releaseAttachment(store, att('b'));
  assert.deepEqual(await ips(store, ipam, att('d')), ['10.244.1.11']);
  await releaseAttachment(store, att('a'));
  assert.deepEqual(await ips(store, ipam, att('e')), ['10.244.1.10']);
});

test('round-robin continues into the next range of the set, and a gateway inside the range is skipped', async () => {
  const store = new MemoryStore();
  const ipam = conf([[
    { subnet: '10.1.0.0/24', rangeStart: '10.1.0.253', rangeEnd: '10.1.0.254', gateway: '10.1.0.254' },
    { subnet: '10.2.0.0/24', rangeStart: '10.2.0.1', rangeEnd: '10.2.0.3' },
  ]]);
  const got: Array<Awaited<ReturnType<typeof allocate>>[number]> = [];
  for (const id of ['a', 'b', 'c']) got.push((await allocate(store, ipam, att(id), []))[0]);
  assert.deepEqual(got.map((x) => x.address), ['10.1.0.253/24', '10.2.0.2/24', '10.2.0.3/24']);
  assert.deepEqual(got.map((x) => x.gateway), ['10.1.0.254', '10.2.0.1', '10.2.0.1']);
  // After 10.2.0.3 the walk wraps to the first range: every usable address of both ranges is taken.
  await rejectsCni(() => allocate(store, ipam, att('d'), []), CniCode.TryAgainLater,
    'range set 0 (10.1.0.0/24, 10.1.0.253-10.1.0.254; 10.2.0.0/24, 10.2.0.1-10.2.0.3): all 3 addresses');
});

test('the network and broadcast addresses are never handed out', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.9.0.0/30', rangeStart: '10.9.0.0', rangeEnd: '10.9.0.3', gateway: '10.9.0.2' }]]);
  assert.deepEqual(await ips(store, ipam, att('a')), ['10.9.0.1']);
  await rejectsCni(() => allocate(store, ipam, att('b'), []), CniCode.TryAgainLater,
    'no free address in range set 0 (10.9.0.0/30, 10.9.0.0-10.9.0.3): all 1 addresses are reserved');
});

test('exhaustion names the range set and its ranges', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.2', rangeEnd: '10.244.1.254' }]]);
  for (let i = 0; i < 253; i++) await allocate(store, ipam, att(`c${i}`), []);
  assert.equal(store.ips().length, 253);
  await rejectsCni(() => allocate(store, ipam, att('late'), []), CniCode.TryAgainLater,
    'no free address in range set 0 (10.244.1.0/24, 10.244.1.2-10.244.1.254): all 253 addresses are reserved');
});

test('requested IP is honoured, refused when taken (naming the holder), refused outside every range', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00::/120' }]]);
  assert.deepEqual(await ips(store, ipam, att('a'), ['10.244.1.77']), ['10.244.1.77', 'fd00::2']);
  assert.equal(store.lastReserved(0), '10.244.1.77');
  assert.deepEqual(await ips(store, ipam, att('b'), ['FD00::0050']), ['10.244.1.78', 'fd00::50']);
  await rejectsCni(() => allocate(store, ipam, att('c'), ['10.244.1.77']), CniCode.TryAgainLater,
    'requested IP address 10.244.1.77 is already reserved by a/eth0 in range set 0');
  assert.deepEqual(findAttachment(store, att('c')), []);
  await rejectsCni(() => allocate(store, ipam, att('c'), ['10.9.9.9']), CniCode.InvalidConfig,
    'requested IP address 10.9.9.9 is not in any configured range', '10.244.1.0/24', 'fd00::/120');
  await rejectsCni(() => allocate(store, ipam, att('c'), ['not-an-ip']), CniCode.InvalidConfig, '"not-an-ip"');
  await rejectsCni(() => allocate(store, ipam, att('c'), ['10.244.1.1']), CniCode.InvalidConfig, '10.244.1.1', 'gateway');
  await rejectsCni(() => allocate(store, ipam, att('c'), ['10.244.1.5', '10.244.1.6']), CniCode.InvalidConfig,
    '10.244.1.5', '10.244.1.6', 'range set 0', 'at most one');
  assert.equal(store.ips().length, 4);
});

test('dual stack: one address per range set, in range set order', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: 'fd00:10:244:1::/64' }], [{ subnet: '10.244.1.0/24' }]]);
  assert.deepEqual(await allocate(store, ipam, att('a'), []), [
    { address: 'fd00:10:244:1::2/64', ip: 'fd00:10:244:1::2', gateway: 'fd00:10:244:1::1', version: 6, rangeSetIndex: 0, reused: false },
    { address: '10.244.1.2/24', ip: '10.244.1.2', gateway: '10.244.1.1', version: 4, rangeSetIndex: 1, reused: false },
  ]);
  assert.equal(store.lastReserved(0), 'fd00:10:244:1::2');
  assert.equal(store.lastReserved(1), '10.244.1.2');
});

test('a retried ADD returns the same addresses without reserving more; a half-made one is completed', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00::/64' }]]);
  const first = await allocate(store, ipam, att('a'), []);
  assert.ok(first.every((x) => !x.reused));
  const again = first.map((x) => ({ ...x, reused: true }));
  assert.deepEqual(await allocate(store, ipam, att('a'), []), again);
  assert.deepEqual(await allocate(store, ipam, att('a'), ['10.244.1.99']), again);
  assert.equal(store.ips().length, 2);
  // Another ifname of the same container is a different attachment.
  assert.deepEqual(await ips(store, ipam, att('a', 'net1')), ['10.244.1.3', 'fd00::3']);
  // An ADD killed between its two reservations: the retry keeps the held one and fills the other.
  store.reserve('10.244.1.50', att('half'), 0);
  assert.deepEqual((await allocate(store, ipam, att('half'), [])).map((x) => [x.ip, x.reused]), [['10.244.1.50', true], ['fd00::4', false]]);
});

test('when range set 1 is exhausted, what range set 0 reserved is rolled back', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00::/64', rangeStart: 'fd00::2', rangeEnd: 'fd00::2' }]]);
  await ips(store, ipam, att('a'));
  const before = store.list();
  await rejectsCni(() => allocate(store, ipam, att('b'), []), CniCode.TryAgainLater, 'range set 1 (fd00::/64, fd00::2-fd00::2)');
  assert.deepEqual(store.list(), before);
  assert.deepEqual(findAttachment(store, att('b')), []);
});

test('release is idempotent and only touches the attachment named', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24' }]]);
  await ips(store, ipam, att('a'));
  await ips(store, ipam, att('b'));
  assert.deepEqual(await releaseAttachment(store, att('a', 'eth1')), []);
  assert.deepEqual(await releaseAttachment(store, att('a')), ['10.244.1.2']);
  assert.deepEqual(await releaseAttachment(store, att('a')), []);
  assert.deepEqual(findAttachment(store, att('b')), ['10.244.1.3']);
});

test('GC keeps valid attachments and drops the rest, unreadable records included', async () => {
  const store = new MemoryStore();
  const ipam = conf([[{ subnet: '10.244.1.0/24' }]]);
  for (const id of ['keep', 'drop1', 'drop2']) await ips(store, ipam, att(id));
  await ips(store, ipam, att('keep', 'net1'));
  store.putRaw('10.244.1.100', '');
  store.putRaw('10.244.1.101', 'a\nb\nc');
  store.putRaw('10.244.1.102', 'keep');      // legacy id-only record of a valid container
  store.putRaw('10.244.1.103', 'gone');      // legacy record of a container that is gone
  const released = await gcAttachments(store, [att('keep'), att('keep', 'net1'), att('other')]);
  assert.deepEqual(released.sort(), ['10.244.1.100', '10.244.1.101', '10.244.1.103', '10.244.1.3', '10.244.1.4']);
  assert.deepEqual(store.ips().sort(), ['10.244.1.102', '10.244.1.2', '10.244.1.5']);
  assert.deepEqual(await gcAttachments(store, [att('keep'), att('keep', 'net1')]), []);
});

test('allocation on a large range walks on from the last address: one reservation attempt per address', async () => {
  // Counted, not timed (a timed bound failed on a busy machine): a walk that rescanned from the start, or
  // built the range (2^80 addresses in the /48), would make many attempts or never finish.
  const store = new MemoryStore();
  let attempts = 0;
  const reserve = store.reserve.bind(store);
  store.reserve = (ip, a, set) => { attempts++; return reserve(ip, a, set); };
  const ipam = conf([[{ subnet: '10.0.0.0/8' }], [{ subnet: 'fd00::/48' }]]);
  for (let i = 0; i < 200; i++) await allocate(store, ipam, att(`c${i}`), []);
  assert.equal(store.ips().length, 400);
  assert.equal(attempts, 400, 'each address reserved at its first attempt');
});
