// The lab's supervisor: a crashed unit comes back after a backoff that doubles, a held one waits for
// its hold to end, a removed one is left alone, and a dead process's socket file is cleared while a
// live one's is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffMs, clearStaleSocket, runSupervisor } from '../../src/lab/supervise.js';
import { disableUnit, enableUnit, holdUnit, parseDuration, readSupervisorState } from '../../src/lab/units.js';
import { livePid, stopDaemon } from '../../src/lab/processes.js';
import { until } from '../helpers/until.js';

test('backoffMs: 0.5 s doubling per crash in a row, at most 30 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 7, 8, 50].map(backoffMs), [0, 500, 1000, 2000, 4000, 30_000, 30_000, 30_000]);
});

test('parseDuration: 30s, 2m, 500ms, 0; anything else is refused naming the value', () => {
  assert.deepEqual(['30s', '2m', '500ms', '0', '1.5s'].map((d) => parseDuration(d, 'duration')), [30_000, 120_000, 500, 0, 1500]);
  for (const bad of ['30', '3x', '', '-1s', 's']) assert.throws(() => parseDuration(bad, 'duration'), new RegExp(`duration "${bad}": expected a duration`));
});

test('clearStaleSocket: removes a socket nothing listens on, keeps a live one and any other file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fnt-sock-'));
  try {
    const live = join(dir, 'live.sock');
    const server = createServer().listen(live);
    await new Promise((r) => server.once('listening', r));
    assert.equal(await clearStaleSocket(live), 'in use');
    assert.ok(existsSync(live));
    // A listener killed with SIGKILL leaves its socket file behind, as a killed etcd does.
    const stale = join(dir, 'stale.sock');
    const dying = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => dying.stdout!.once('data', r));
    dying.kill('SIGKILL');
    await new Promise((r) => dying.once('exit', r));
    writeFileSync(join(dir, 'plain'), 'x');
    assert.ok(existsSync(stale));
    assert.equal(await clearStaleSocket(stale), 'removed');
    assert.ok(!existsSync(stale));
    assert.equal(await clearStaleSocket(join(dir, 'plain')), 'in use');
    assert.equal(await clearStaleSocket(join(dir, 'none')), 'absent');
    server.close();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('runSupervisor: a killed unit is restarted with its exit recorded; a held one waits; a disabled one stays stopped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fnt-sup-'));
  let stop!: () => void;
  const stopRequested = new Promise<void>((r) => { stop = r; });
  const logs: string[] = [];
  const pidFile = join(dir, 'run', 'sleeper.pid');
  const sup = runSupervisor({ labDir: dir, log: (m) => logs.push(m), pollMs: 50, stopRequested });
  try {
    enableUnit(dir, { name: 'sleeper', argv: ['sleep', '300'], logFile: join(dir, 'log', 'sleeper.log'), pidFile });
    const first = await until('the unit to start', () => livePid(pidFile));
    process.kill(first, 'SIGKILL');
    const second = await until('the unit to be restarted', () => { const p = livePid(pidFile); return p !== first && p; });
    const st = await until('the restart to be recorded', () => { const u = readSupervisorState(dir)?.units.sleeper; return u?.pid === second && u; });
    assert.equal(st.restarts, 1);
    assert.equal(st.lastExit, 'signal SIGKILL');

    assert.throws(() => holdUnit(dir, 'nope', Date.now() + 1000), /unit "nope" is not supervised in this lab \(units: sleeper\)/);
    // Held: killed again, it stays down until the hold is released.
    holdUnit(dir, 'sleeper', Date.now() + 60_000);
    process.kill(second, 'SIGKILL');
    await until('the exit to be recorded', () => readSupervisorState(dir)?.units.sleeper?.restarts === 1 && readSupervisorState(dir)?.units.sleeper?.pid === undefined);
    assert.equal(livePid(pidFile), undefined, 'a held unit is not restarted');
    holdUnit(dir, 'sleeper', 0);
    const third = await until('the unit to start once released', () => livePid(pidFile));
    // After two crashes in a row the wait was 1 s: the log says so.
    assert.ok(logs.some((l) => /sleeper: pid \d+ ended \(signal SIGKILL\); starting again in 1000 ms/.test(l)), logs.join('\n'));

    disableUnit(dir, 'sleeper');
    await stopDaemon(pidFile, { graceMs: 0 });
    assert.equal(livePid(pidFile), undefined);
    await until('the supervisor to forget the unit', () => readSupervisorState(dir)?.units.sleeper === undefined);
    assert.equal(livePid(pidFile), undefined, 'a disabled unit is not restarted');
    assert.notEqual(third, second);
  } finally {
    stop();
    await sup;
    await stopDaemon(pidFile, { graceMs: 0 });
    rmSync(dir, { recursive: true, force: true });
  }
});
