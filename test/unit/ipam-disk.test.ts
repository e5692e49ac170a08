// DiskStore in a temp dir: host-local's exact layout, exclusive records, lock stealing, crash leftovers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { FileLock } from '../../src/ipam/lock.js';
import { allocate, findAttachment, gcAttachments, releaseAttachment } from '../../src/ipam/allocator.js';
import { parseIpamConf } from '../../src/ipam/config.js';
import { CniCode } from '../../src/cni/errors.js';
import type { Attachment } from '../../src/ipam/types.js';
import { rejectsCni, throwsCni } from '../helpers/assert-cni.js';

const root = mkdtempSync(join(tmpdir(), 'fnt-ipam-disk-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh data dir per test, so tests never see each other's files. */
const freshDir = () => join(root, `d${n++}`);
const att = (containerId: string, ifname = 'eth0'): Attachment => ({ containerId, ifname });
const v4 = parseIpamConf({ ranges: [[{ subnet: '10.244.1.0/24' }]] }, 'net1');
const past = (path: string, secondsAgo: number) => {
  const t = Date.now() / 1000 - secondsAgo;
  utimesSync(path, t, t);
};

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}


test('layout is host-local\'s: <dataDir>/<network>/<ip> = "id\\r\\nifname", last_reserved_ip.<set>, no lock left', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  assert.equal(existsSync(data), false, 'directory is created lazily');
  const ipam = parseIpamConf({ ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'FD00::/64' }]] }, 'net1');
  await allocate(store, ipam, att('c1'), []);
  const dir = join(data, 'net1');
  assert.deepEqual(readdirSync(dir).sort(), ['10.244.1.2', 'fd00::2', 'last_reserved_ip.0', 'last_reserved_ip.1']);
  assert.equal(readFileSync(join(dir, '10.244.1.2'), 'utf8'), 'c1\r\neth0');
  assert.equal(readFileSync(join(dir, 'fd00::2'), 'utf8'), 'c1\r\neth0');
  assert.equal(readFileSync(join(dir, 'last_reserved_ip.0'), 'utf8'), '10.244.1.2');
  assert.equal(readFileSync(join(dir, 'last_reserved_ip.1'), 'utf8'), 'fd00::2');
  assert.deepEqual((await releaseAttachment(store, att('c1'))).sort(), ['10.244.1.2', 'fd00::2']);
  assert.deepEqual(readdirSync(dir).sort(), ['last_reserved_ip.0', 'last_reserved_ip.1']);
});

test('round-robin state survives across processes: a new store continues after last_reserved_ip', async () => {
  const data = freshDir();
  await allocate(new DiskStore(data, 'net1'), v4, att('a'), []);
  await releaseAttachment(new DiskStore(data, 'net1'), att('a'));
  assert.deepEqual((await allocate(new DiskStore(data, 'net1'), v4, att('b'), [])).map((x) => x.ip), ['10.244.1.3']);
});

test('a reservation is exclusive: the second reserve of one address fails and keeps the first holder', async () => {
  const data = freshDir();
  const s1 = new DiskStore(data, 'net1');
  const s2 = new DiskStore(data, 'net1');
  assert.equal(s1.reserve('10.244.1.9', att('a'), 0), true);
  assert.equal(s2.reserve('10.244.1.9', att('b'), 0), false);
  assert.equal(readFileSync(join(data, 'net1', '10.244.1.9'), 'utf8'), 'a\r\neth0');
  assert.deepEqual(s2.list(), [{ ip: '10.244.1.9', attachment: att('a') }]);
  assert.deepEqual(readdirSync(join(data, 'net1')).filter((f) => f.startsWith('.')), [], 'no temp file left');
});

test('a requested address held by another attachment names the holder', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  await allocate(store, v4, att('owner', 'net7'), ['10.244.1.20']);
  await rejectsCni(() => allocate(store, v4, att('other'), ['10.244.1.20']), CniCode.TryAgainLater,
    'requested IP address 10.244.1.20 is already reserved by owner/net7 in range set 0');
});

test('a lock left by a dead process is stolen', async () => {
  const data = freshDir();
  mkdirSync(join(data, 'net1'), { recursive: true });
  writeFileSync(join(data, 'net1', 'lock'), String(deadPid()));
  const t0 = Date.now();
  const got = await allocate(new DiskStore(data, 'net1', { lockTimeoutMs: 3000 }), v4, att('a'), []);
  assert.equal(got[0].ip, '10.244.1.2');
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(existsSync(join(data, 'net1', 'lock')), false);
});

test('an empty lock (host-local\'s leftover, or a writer killed before writing its pid) is stolen once 2 s old', async () => {
  const data = freshDir();
  const lock = join(data, 'net1', 'lock');
  mkdirSync(join(data, 'net1'), { recursive: true });
  writeFileSync(lock, '');
  await rejectsCni(() => new DiskStore(data, 'net1', { lockTimeoutMs: 100 }).withLock(() => 1), CniCode.TryAgainLater, lock);
  past(lock, 3);
  assert.equal(await new DiskStore(data, 'net1', { lockTimeoutMs: 1000 }).withLock(() => 7), 7);
});

test('a lock 30 s old is stolen even when its pid is alive (the pid was reused after its owner died)', async () => {
  const data = freshDir();
  const lock = join(data, 'net1', 'lock');
  mkdirSync(join(data, 'net1'), { recursive: true });
  writeFileSync(lock, String(process.ppid));
  past(lock, 60);
  assert.equal(await new DiskStore(data, 'net1', { lockTimeoutMs: 1000 }).withLock(() => 'ran'), 'ran');
  assert.equal(existsSync(lock), false);
});

test('a lock held by a live process is not stolen: TryAgainLater naming the lock path', async () => {
  const data = freshDir();
  mkdirSync(join(data, 'net1'), { recursive: true });
  const lock = join(data, 'net1', 'lock');
  const held = new FileLock(lock);
  await held.acquire();
  try {
    assert.equal(readFileSync(lock, 'utf8'), String(process.pid));
    const t0 = Date.now();
    await rejectsCni(() => allocate(new DiskStore(data, 'net1', { lockTimeoutMs: 150 }), v4, att('b'), []),
      CniCode.TryAgainLater, lock, `pid ${process.pid}`);
    assert.ok(Date.now() - t0 >= 150);
  } finally {
    held.release();
  }
  assert.equal(existsSync(lock), false);
  // Re-entrant within one store: nested calls do not deadlock.
  const store = new DiskStore(data, 'net1');
  assert.equal(await store.withLock(() => store.withLock(() => 3)), 3);
  assert.deepEqual(readdirSync(join(data, 'net1')), [], 'no lock or queue ticket left');
});

test('GC removes leftover temp files once stale, and records with unreadable content', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  await allocate(store, v4, att('keep'), []);
  const dir = join(data, 'net1');
  for (const f of ['.tmp-123-old', '.lock-stale-123-old', '.tmp-123-fresh']) writeFileSync(join(dir, f), 'x');
  past(join(dir, '.tmp-123-old'), 60);
  past(join(dir, '.lock-stale-123-old'), 60);
  writeFileSync(join(dir, '10.244.1.77'), '');          // a writer that died mid-write (host-local writes in place)
  writeFileSync(join(dir, '10.244.1.78'), 'gone\r\neth0');
  writeFileSync(join(dir, 'README'), 'not a record');   // foreign files are left alone
  assert.deepEqual((await gcAttachments(store, [att('keep')])).sort(), ['10.244.1.77', '10.244.1.78']);
  assert.deepEqual(readdirSync(dir).sort(), ['.tmp-123-fresh', '10.244.1.2', 'README', 'last_reserved_ip.0']);
});

test('temp files are not swept by readers outside the lock', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  await allocate(store, v4, att('a'), []);
  const old = join(data, 'net1', '.tmp-9-old');
  writeFileSync(old, 'x');
  past(old, 60);
  assert.deepEqual(findAttachment(store, att('a')), ['10.244.1.2']);
  assert.equal(existsSync(old), true);
  await allocate(store, v4, att('b'), []);
  assert.equal(existsSync(old), false);
});

test('legacy id-only records (older host-local) are found and released by container id', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  const dir = join(data, 'net1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '10.244.1.40'), 'legacy-ctr\n');
  writeFileSync(join(dir, '10.244.1.41'), '  spaced \r\n eth0 \n');
  assert.deepEqual(findAttachment(store, att('legacy-ctr', 'eth0')), ['10.244.1.40']);
  assert.deepEqual(findAttachment(store, att('legacy-ctr', 'net1')), ['10.244.1.40']);
  assert.deepEqual(findAttachment(store, att('spaced')), ['10.244.1.41']);
  assert.deepEqual(findAttachment(store, att('spaced', 'eth1')), []);
  // As host-local: an exact record wins; the legacy one is the fallback when none names the interface.
  writeFileSync(join(dir, '10.244.1.42'), 'legacy-ctr\r\nnet1');
  assert.deepEqual(findAttachment(store, att('legacy-ctr', 'net1')), ['10.244.1.42']);
  assert.deepEqual(await releaseAttachment(store, att('legacy-ctr')), ['10.244.1.40']);
  assert.deepEqual(store.list().map((r) => r.ip).sort(), ['10.244.1.41', '10.244.1.42']);
});

test('ADD does not take over a legacy record: it cannot tell which interface the record was for', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  mkdirSync(join(data, 'net1'), { recursive: true });
  writeFileSync(join(data, 'net1', '10.244.1.2'), 'old-ctr');
  assert.deepEqual((await allocate(store, v4, att('old-ctr', 'net1'), [])).map((x) => x.ip), ['10.244.1.3']);
  assert.deepEqual((await allocate(store, v4, att('old-ctr', 'net1'), [])).map((x) => x.ip), ['10.244.1.3']);
});

test('checkWritable fails with NotAvailable (50) naming the dir when it cannot be created', async () => {
  const file = join(root, `plain-file-${n++}`);
  writeFileSync(file, '');
  const store = new DiskStore(join(file, 'x'), 'net1');
  throwsCni(() => store.checkWritable(), CniCode.NotAvailable, join(file, 'x', 'net1'));
  await rejectsCni(() => allocate(store, v4, att('a'), []), CniCode.NotAvailable, join(file, 'x', 'net1'));
  new DiskStore(freshDir(), 'net1').checkWritable();
});

test('a /16 with a few reservations allocates quickly from disk', async () => {
  const data = freshDir();
  const store = new DiskStore(data, 'net1');
  const ipam = parseIpamConf({ ranges: [[{ subnet: '10.20.0.0/16' }]] }, 'net1');
  // Reservations ahead of the cursor are skipped from the listing, not probed one by one.
  for (let i = 2; i < 300; i++) store.reserve(`10.20.${i >> 8}.${i & 255}`, att(`pre${i}`), 1);
  const t0 = Date.now();
  for (let i = 0; i < 50; i++) await allocate(store, ipam, att(`c${i}`), []);
  const ms = Date.now() - t0;
  assert.deepEqual(findAttachment(store, att('c0')), ['10.20.1.44']);
  assert.ok(ms < 3000, `50 allocations took ${ms} ms`);
});

test('if the round-robin cursor cannot be written, the new record is undone: nothing half-made', async () => {
  const data = freshDir();
  mkdirSync(join(data, 'net1', 'last_reserved_ip.0'), { recursive: true }); // rename onto a directory fails
  await rejectsCni(() => allocate(new DiskStore(data, 'net1'), v4, att('a'), []), CniCode.NotAvailable, 'last_reserved_ip.0');
  assert.deepEqual(readdirSync(join(data, 'net1')), ['last_reserved_ip.0']);
});
