// The check's prober in a namespace of its own: a prober starved of CPU still sees the answer that
// came in time (no false timeout), a failed probe is tried again before it is judged, and `flatnet
// serve --probes` runs streamed probes beside serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TestScope, netnsPath } from '../helpers/scope.js';
import { CLI } from '../helpers/lab.js';

const scope = new TestScope('cpr');
after(() => scope.cleanupSync());
const ns = scope.netns('p');

/** `flatnet serve` in the test's namespace; resolves once it listens. */
function serve(port: number, extra: string[] = []) {
  const child = spawn('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, CLI, 'serve', '--port', `${port}`, '--name', `srv-${port}`, ...extra], { stdio: ['pipe', 'pipe', 'inherit'] });
  scope.adoptProcess(child);
  const lines = createInterface({ input: child.stdout! });
  return { child, lines, listening: new Promise<void>((resolve) => lines.once('line', () => resolve())) };
}

test('a prober starved past its timeout still takes the answer that arrived in time', async () => {
  const { listening } = serve(7101);
  await listening;
  // The probe connects, then its process is kept off the CPU (a busy loop) for longer than the timeout:
  // meanwhile the server answers. Node runs due timers before reading sockets.
  const script = join(scope.dir, 'starved.mjs');
  const mod = new URL('../../src/workload/probe.js', import.meta.url).href;
  writeFileSync(script, `
    const { probe } = await import(${JSON.stringify(mod)});
    const answer = probe({ host: '127.0.0.1', port: 7101, protocol: 'tcp' }, 100);
    await new Promise((r) => setImmediate(r)); // the connect is under way
    const until = Date.now() + 600;
    while (Date.now() < until) { /* starved */ }
    console.log(JSON.stringify(await answer));
  `);
  const r = spawnSync('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const answer = JSON.parse(r.stdout) as { ok: boolean; error?: string; answer?: { pod: string } };
  assert.equal(answer.ok, true, `got ${answer.error}`);
  assert.equal(answer.answer?.pod, 'srv-7101');
});

test('probe-worker --stream: a probe refused at first is tried again and answered once its server listens; one that stays refused fails after every try', async () => {
  const worker = spawn('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, CLI, 'probe-worker', '--stream'], { stdio: ['pipe', 'pipe', 'inherit'] });
  scope.adoptProcess(worker);
  const lines = createInterface({ input: worker.stdout! })[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, '{"ready":true}');
  const settings = { timeoutMs: 1000, attempts: 3, backoffMs: [400, 400] };
  worker.stdin!.write(`${JSON.stringify({ id: 1, host: '127.0.0.1', port: 7102, protocol: 'tcp', ...settings })}\n`);
  worker.stdin!.write(`${JSON.stringify({ id: 2, host: '127.0.0.1', port: 7103, protocol: 'tcp', ...settings })}\n`);
  worker.stdin!.end();
  // The server comes up while the first attempt's backoff runs.
  const { listening } = serve(7102);
  await listening;
  const results = [JSON.parse((await lines.next()).value), JSON.parse((await lines.next()).value)].sort((a, b) => a.id - b.id);
  assert.equal(results[0].ok, true, JSON.stringify(results[0]));
  assert.equal(results[0].server, 'srv-7102');
  assert.ok(results[0].attempts >= 2, `answered on attempt ${results[0].attempts}`);
  assert.deepEqual([results[1].ok, results[1].error, results[1].attempts], [false, 'ECONNREFUSED', 3]);
});

test('serve --probes: serves, and runs the probes streamed to it from its own namespace', async () => {
  const { child, lines, listening } = serve(7104, ['--probes']);
  await listening;
  child.stdin!.write(`${JSON.stringify({ id: 7, host: '127.0.0.1', port: 7104, protocol: 'tcp', timeoutMs: 1000 })}\n`);
  const r = JSON.parse(await new Promise<string>((resolve) => lines.once('line', resolve)));
  assert.deepEqual([r.id, r.ok, r.server, r.attempts], [7, true, 'srv-7104', 1]);
  child.stdin!.end();
  // Its probes are done, its serving is not.
  const again = spawnSync('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, CLI, 'probe', '127.0.0.1:7104'], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stdout + again.stderr);
});
