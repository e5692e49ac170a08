// The IPAM lock is fair and never blocks the event loop: waiters, in one process or many, get it in
// the order they asked, and a process waiting for it goes on running its timers (an agent's heartbeat).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { until } from '../helpers/until.js';

const root = mkdtempSync(join(tmpdir(), 'fnt-ipam-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A network directory whose lock a live process (our parent, the test runner) holds, fresh. */
function heldByAnother(): { data: string; lock: string } {
  const data = join(root, `d${n++}`);
  mkdirSync(join(data, 'net'), { recursive: true });
  const lock = join(data, 'net', 'lock');
  writeFileSync(lock, String(process.ppid));
  return { data, lock };
}

test('a process waiting for the lock keeps running its timers, and gets the lock once it is free', async () => {
  const { data, lock } = heldByAnother();
  let settled = false;
  const pending = new DiskStore(data, 'net', { lockTimeoutMs: 20_000 }).withLock(() => 'got').finally(() => { settled = true; });
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 5);
  try {
    await until('timers to run while the lock is waited for', () => ticks >= 3, 10_000, 5);
    assert.equal(settled, false, 'still waiting: the lock is held');
  } finally {
    clearInterval(timer);
  }
  unlinkSync(lock);
  assert.equal(await pending, 'got');
  assert.deepEqual(readdirSync(join(data, 'net')), [], 'no lock or queue ticket left');
});

test('waiters in several processes get the lock in the order they asked for it', { timeout: 60_000 }, async () => {
  const { data, lock } = heldByAnother();
  const order = join(data, 'order');
  const script = join(root, 'waiter.mjs');
  writeFileSync(script, `
const { DiskStore } = await import(process.argv[2]);
const { appendFileSync } = await import('node:fs');
const [, , , data, order, name] = process.argv;
const done = new DiskStore(data, 'net', { lockTimeoutMs: 30000 }).withLock(() => appendFileSync(order, name + '\\n'));
process.stdout.write('queued\\n'); // the ticket is taken before withLock first waits
await done;
`);
  const storeUrl = new URL('../../src/ipam/disk-store.js', import.meta.url).href;
  const names = ['w0', 'w1', 'w2', 'w3'];
  const exits: Array<Promise<number | null>> = [];
  const children = [];
  try {
    for (const name of names) {
      const child = spawn(process.execPath, [script, storeUrl, data, order, name], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      exits.push(new Promise((resolve) => child.on('close', resolve)));
      let out = '';
      child.stdout.on('data', (b: Buffer) => { out += b; });
      await until(`${name} to queue`, () => out.includes('queued'), 20_000, 10);
    }
    unlinkSync(lock);
    assert.deepEqual(await Promise.all(exits), names.map(() => 0));
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  assert.deepEqual(readFileSync(order, 'utf8').trim().split('\n'), names);
  assert.deepEqual(readdirSync(join(data, 'net')), [], 'no lock or queue ticket left');
});
