// The warm server's persistent `ip -batch`: answers each request with its own failures and output,
// under concurrency, across many requests, and after its ip process dies.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope, netnsPath } from '../helpers/scope.js';
import { parseSessionOutput } from '../../src/kernel/ip-session.js';

const scope = new TestScope('ips');
after(() => scope.cleanupSync());

test('parseSessionOutput: failures numbered per request; ip output apart from error messages', () => {
  const text = 'RTNETLINK answers: File exists\nCommand failed -:11\n2: br0: <UP> mtu 1500\n    link/ether 0a:58:0a:00:00:01 brd ff:ff:ff:ff:ff:ff\nCannot find device "x"\nCommand failed -:13\n';
  const r = parseSessionOutput(text, 10);
  assert.deepEqual([...r.failures], [[2, 'RTNETLINK answers: File exists'], [4, 'Cannot find device "x"']]);
  assert.equal(r.stdout, '2: br0: <UP> mtu 1500\n    link/ether 0a:58:0a:00:00:01 brd ff:ff:ff:ff:ff:ff\n');
});

// The session works on its own process's netns: run the scenario inside a namespace of this test.
test('one ip for many requests: concurrent requests get their own failures, output and effects; a dead ip is replaced', () => {
  const ns = scope.netns('n');
  const script = join(scope.dir, 'session.mjs');
  const mod = new URL('../../src/kernel/ip-session.js', import.meta.url).href;
  writeFileSync(script, `
    const { IpSession } = await import(${JSON.stringify(mod)});
    const s = new IpSession();
    const out = {};
    // 30 requests at once, each making a bridge port; every one also re-adds the bridge ("File exists" on its line 1).
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => s.run([
      'link add fnbr address 0a:58:0a:00:00:01 type bridge', \`link add fnv\${i} type veth peer name fnp\${i}\`, \`link set fnv\${i} master fnbr\`,
      i % 3 === 0 ? 'link set nosuchdev up' : 'link set fnbr up', 'link show fnbr',
    ])));
    out.failures = rs.map((r) => [...r.failures].map(([l]) => l));
    out.firstMessage = [...rs[0].failures][0]?.[1] ?? '';
    out.macs = [...new Set(rs.map((r) => /link\\/ether (\\S+)/.exec(r.stdout)?.[1]))];
    // The ip process dies: the next request starts a new one and is numbered from its line 1.
    process.kill(s.child.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const again = await s.run(['link set nosuchdev up', 'link set fnv0 down']);
    out.after = [...again.failures].map(([l]) => l);
    s.close();
    console.log(JSON.stringify(out));
  `);
  const r = spawnSync('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { failures: number[][]; firstMessage: string; macs: string[]; after: number[] };
  out.failures.forEach((f, i) => assert.deepEqual(f, i === 0 ? (i % 3 === 0 ? [4] : []) : i % 3 === 0 ? [1, 4] : [1], `request ${i}`));
  assert.match(out.firstMessage, /nosuchdev|Cannot find device/);
  assert.deepEqual(out.macs, ['0a:58:0a:00:00:01'], 'every request saw the bridge');
  assert.deepEqual(out.after, [1]);
  const ports = spawnSync('ip', ['-n', ns, '-j', 'link', 'show', 'master', 'fnbr'], { encoding: 'utf8' });
  assert.equal((JSON.parse(ports.stdout) as unknown[]).length, 30);
});

test('renew() forgets a re-made link\'s old index; a request with no answer in time ends its ip and the next runs on a new one', () => {
  const ns = scope.netns('w');
  const fifo = join(scope.dir, 'fifo');
  spawnSync('mkfifo', [fifo]);
  const script = join(scope.dir, 'wedge.mjs');
  const mod = new URL('../../src/kernel/ip-session.js', import.meta.url).href;
  writeFileSync(script, `
    const { IpSession, IpSessionError } = await import(${JSON.stringify(mod)});
    const { execFileSync } = await import('node:child_process');
    const s = new IpSession();
    const out = {};
    await s.run(['link add fnw0 type veth peer name fnw9', 'link set fnw0 up']);
    // fnw0 deleted and made again behind the session's back: renew() forgets its old index.
    execFileSync('ip', ['link', 'del', 'fnw0']);
    execFileSync('ip', ['link', 'add', 'fnw0', 'type', 'veth', 'peer', 'name', 'fnw9']);
    s.renew();
    const r = await s.run(['link set fnw0 up', 'link show fnw0']);
    out.renewed = [...r.failures.values()];
    out.up = /UP/.test(r.stdout);
    // Opening a FIFO blocks ip for good: the deadline ends it, and the next request gets a new ip.
    out.wedged = await s.run(['link add fnw1 type veth peer name fnw2 netns ${fifo}'], { timeoutMs: 300 })
      .then(() => 'answered', (e) => e instanceof IpSessionError ? 'IpSessionError' : String(e));
    out.after = [...(await s.run(['link set fnw0 down'])).failures.values()];
    s.close();
    console.log(JSON.stringify(out));
  `);
  const r = spawnSync('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { renewed: [], up: true, wedged: 'IpSessionError', after: [] });
});
