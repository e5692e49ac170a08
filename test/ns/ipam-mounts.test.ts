// DiskStore on real tmpfs mounts (as /run is on a node): read-only and full filesystems get
// NotAvailable naming the directory, and a failed write leaves no lock, temp file or half record.
// Root bypasses permission bits, so only mounts make these failures real; each runs in its own mount namespace.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';

const scope = new TestScope('ipm');
after(() => scope.cleanupSync());

const moduleUrl = (name: string) => new URL(`../../src/ipam/${name}.js`, import.meta.url).href;

const CHILD = `
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
const [scenario, dataDir, allocatorUrl, configUrl, storeUrl] = process.argv.slice(2);
const { allocate, releaseAttachment, findAttachment } = await import(allocatorUrl);
const { parseIpamConf } = await import(configUrl);
const { DiskStore } = await import(storeUrl);
const ipam = parseIpamConf({ dataDir, ranges: [[{ subnet: '10.66.0.0/24' }]] }, 'net1');
const store = () => new DiskStore(dataDir, 'net1');
const att = (id) => ({ containerId: id, ifname: 'eth0' });
const attempt = async (fn) => { try { return { ok: await fn() }; } catch (e) { return { code: e.code, msg: e.message }; } };
const files = () => readdirSync(dataDir + '/net1').sort();
const out = {};
if (scenario === 'ro') {
  out.check = await attempt(() => store().checkWritable());
  out.add = await attempt(() => allocate(store(), ipam, att('c1'), []));
} else if (scenario === 'remount') {
  out.add = await attempt(async () => (await allocate(store(), ipam, att('c1'), [])).map((a) => a.ip));
  execFileSync('mount', ['-o', 'remount,ro', dataDir]);
  out.find = await attempt(() => findAttachment(store(), att('c1')));
  out.del = await attempt(() => releaseAttachment(store(), att('c1')));
  out.check = await attempt(() => store().checkWritable());
  out.files = files();
} else if (scenario === 'full') {
  out.adds = [];
  for (let i = 0; i < 20; i++) {
    const r = await attempt(async () => (await allocate(store(), ipam, att('c' + i), [])).map((a) => a.ip));
    out.adds.push(r);
    if (!r.ok) break;
  }
  out.filesWhenFull = files();
  out.del = await attempt(() => releaseAttachment(store(), att('c0')));
  out.addAfterDel = await attempt(async () => (await allocate(store(), ipam, att('late'), [])).map((a) => a.ip));
}
process.stdout.write(JSON.stringify(out));
`;

type Attempt<T> = { ok?: T; code?: number; msg?: string };

/** Mounts `mountOpts` tmpfs on a fresh dir inside a private mount namespace and runs the scenario there. */
function runScenario(scenario: string, mountOpts: string): Record<string, unknown> {
  const script = join(scope.dir, 'child.mjs');
  writeFileSync(script, CHILD);
  const dir = join(scope.dir, scenario);
  mkdirSync(dir, { recursive: true });
  const args = [scenario, dir, moduleUrl('allocator'), moduleUrl('config'), moduleUrl('disk-store')];
  const out = execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"', 'sh', mountOpts, dir,
    process.execPath, script, ...args], { encoding: 'utf8' });
  return JSON.parse(out) as Record<string, unknown>;
}

test('a read-only data directory: checkWritable and ADD fail with NotAvailable naming it', () => {
  const out = runScenario('ro', 'ro,size=1m');
  const dir = join(scope.dir, 'ro', 'net1');
  for (const key of ['check', 'add']) {
    const r = out[key] as Attempt<unknown>;
    assert.equal(r.code, 50, `${key}: ${JSON.stringify(r)}`);
    assert.ok(r.msg?.includes(dir), `${key}: ${r.msg}`);
  }
});

test('remounted read-only after an ADD: reads still work, DEL fails with NotAvailable, nothing changes', () => {
  const out = runScenario('remount', 'size=1m');
  assert.deepEqual(out.add, { ok: ['10.66.0.2'] });
  assert.deepEqual(out.find, { ok: ['10.66.0.2'] });
  const del = out.del as Attempt<unknown>;
  assert.equal(del.code, 50, JSON.stringify(del));
  assert.match(del.msg ?? '', /lock/);
  assert.equal((out.check as Attempt<unknown>).code, 50);
  assert.deepEqual(out.files, ['10.66.0.2', 'last_reserved_ip.0']);
});

test('a filesystem out of inodes: ADD fails with NotAvailable and leaves no lock, temp file or record', () => {
  const out = runScenario('full', 'size=1m,nr_inodes=8');
  const adds = out.adds as Array<Attempt<string[]>>;
  const failed = adds.at(-1)!;
  assert.ok(adds.length >= 2 && adds.length < 20, `expected some ADDs to succeed, then one to fail: ${JSON.stringify(adds)}`);
  assert.equal(failed.code, 50, JSON.stringify(failed));
  const good = adds.slice(0, -1).map((r) => r.ok![0]);
  assert.deepEqual(out.filesWhenFull, [...good, 'last_reserved_ip.0'].sort());
  assert.deepEqual(out.del, { ok: [good[0]] });
  assert.ok((out.addAfterDel as Attempt<string[]>).ok, JSON.stringify(out.addAfterDel));
});
