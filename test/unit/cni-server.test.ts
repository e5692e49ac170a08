// The CNI server's wire format, and why many requests in one process cannot break the IPAM lock.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAnswer, decodeRequest, encodeAnswer, encodeRequest, RequestFramingError } from '../../src/cni/server.js';
import { FileLock } from '../../src/ipam/lock.js';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { allocate } from '../../src/ipam/allocator.js';
import { parseIpamConf } from '../../src/ipam/config.js';

const root = mkdtempSync(join(tmpdir(), 'fnt-cni-server-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('a request carries CNI_* and PATH, then an empty entry, then stdin as is', () => {
  const env = { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=x=y', PATH: '/usr/bin', HOME: '/root', NODE_EXTRA_CA_CERTS: '/x' };
  const buf = encodeRequest(env, '{"a":"é"}');
  assert.equal(buf.toString('utf8'), 'CNI_COMMAND=ADD\0CNI_ARGS=A=1;B=x=y\0PATH=/usr/bin\0\0{"a":"é"}');
  assert.deepEqual(decodeRequest(buf), { env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=x=y', PATH: '/usr/bin' }, stdin: '{"a":"é"}' });
});

test('an empty environment and empty stdin are a valid request; foreign entries are dropped', () => {
  assert.deepEqual(decodeRequest(Buffer.from('\0')), { env: {}, stdin: '' });
  assert.deepEqual(decodeRequest(Buffer.from('HOME=/root\0CNI_COMMAND=VERSION\0\0')), { env: { CNI_COMMAND: 'VERSION' }, stdin: '' });
  assert.deepEqual(decodeRequest(Buffer.from('CNI_IFNAME=\0\0x\0y')), { env: { CNI_IFNAME: '' }, stdin: 'x\0y' });
});

test('a request cut inside its environment, or with an entry that is not KEY=VALUE, is refused', () => {
  assert.throws(() => decodeRequest(Buffer.from('')), RequestFramingError);
  assert.throws(() => decodeRequest(Buffer.from('CNI_COMMAND=ADD\0')), RequestFramingError);
  assert.throws(() => decodeRequest(Buffer.from('=x\0\0')), RequestFramingError);
  assert.throws(() => decodeRequest(Buffer.from('NOEQUALS\0\0')), RequestFramingError);
});

test('an answer is the exit code line, then stdout as the plugin process prints it', () => {
  assert.equal(encodeAnswer({ exitCode: 0, stdout: '{"ok":1}' }).toString(), '0\n{"ok":1}\n');
  assert.equal(encodeAnswer({ exitCode: 0, stdout: '' }).toString(), '0\n', 'DEL prints nothing');
  assert.equal(encodeAnswer({ exitCode: 1, stdout: '{"code":7}' }).toString(), '1\n{"code":7}\n');
  assert.deepEqual(decodeAnswer(Buffer.from('1\n{"code":7}\n')), { exitCode: 1, stdout: '{"code":7}\n' });
  assert.throws(() => decodeAnswer(Buffer.from('')), RequestFramingError);
  assert.throws(() => decodeAnswer(Buffer.from('x\n')), RequestFramingError);
});

test('a lock file holding this process\'s pid is never stolen from it', async () => {
  const path = join(root, 'own-lock');
  writeFileSync(path, String(process.pid));
  await assert.rejects(new FileLock(path, 300).acquire(), (e: any) => e.code === 11 && /held by pid/.test(e.message));
});

test('concurrent in-process requests serialize: the critical section is synchronous, so each gets its own address', async () => {
  const ipam = parseIpamConf({ dataDir: join(root, 'ipam'), ranges: [[{ subnet: '10.244.9.0/28' }]] }, 'srv');
  // Each request makes its own store and lock, as handleRequest does per ADD.
  const ips = await Promise.all(Array.from({ length: 13 }, async (_, i) => {
    await new Promise((r) => setImmediate(r));
    return (await allocate(new DiskStore(ipam.dataDir, 'srv'), ipam, { containerId: `c${i}`, ifname: 'eth0' }, [])).map((x) => x.ip)[0];
  }));
  assert.equal(new Set(ips).size, 13);
  assert.ok(!readdirSync(join(root, 'ipam', 'srv')).includes('lock'), 'no lock is left behind');
});
