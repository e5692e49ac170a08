// 100 plugin-like processes allocate at once on one /24, then release at once: the lock must keep
// every address distinct and leave neither records, temp files nor the lock behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStore } from '../../src/ipam/disk-store.js';

const PROCS = 100;
const root = mkdtempSync(join(tmpdir(), 'fnt-ipam-conc-'));
after(() => rmSync(root, { recursive: true, force: true }));

// The compiled modules sit beside this compiled test: <out>/test/unit -> <out>/src/ipam.
const moduleUrl = (name: string) => new URL(`../../src/ipam/${name}.js`, import.meta.url).href;

// Each child loads the modules, reports ready, then runs one command per stdin line ("add", "del"),
// answering a JSON line each: the parent sends a command to all 100 at once, so they hit the lock together
// instead of being spread out by node's start-up time (and each process is started once, for both phases).
const CHILD = `
const [dataDir, containerId, allocatorUrl, configUrl, storeUrl] = process.argv.slice(2);
const { allocate, releaseAttachment } = await import(allocatorUrl);
const { parseIpamConf } = await import(configUrl);
const { DiskStore } = await import(storeUrl);
const { createInterface } = await import('node:readline');
const ipam = parseIpamConf({ dataDir, ranges: [[{ subnet: '10.244.1.0/24' }]] }, 'conc');
const a = { containerId, ifname: 'eth0' };
process.stdout.write('ready\\n');
for await (const op of createInterface({ input: process.stdin })) {
  const store = new DiskStore(ipam.dataDir, 'conc'); // a fresh store per command, as each plugin run makes
  try {
    const ips = op === 'add' ? (await allocate(store, ipam, a, [])).map((x) => x.ip) : await releaseAttachment(store, a);
    process.stdout.write(JSON.stringify({ ips }) + '\\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err && err.message) }) + '\\n');
  }
}
`;

/** One child and the lines it has written, awaitable one at a time. */
class Child {
  private readonly proc: ChildProcessWithoutNullStreams;
  private buffered = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private stderr = '';
  readonly exited: Promise<number | null>;

  constructor(script: string, args: string[]) {
    this.proc = spawn(process.execPath, [script, ...args]);
    this.proc.stderr.on('data', (d: Buffer) => { this.stderr += d; });
    this.proc.stdout.on('data', (d: Buffer) => {
      this.buffered += d;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.lines.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
      this.flush();
    });
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => {
      this.lines.push(`exited ${code}: ${this.stderr}`);
      this.flush();
      resolve(code);
    }));
  }

  private flush(): void {
    if (this.waiting && this.lines.length) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.lines.shift()!);
    }
  }

  nextLine(): Promise<string> {
    return new Promise((resolve) => { this.waiting = resolve; this.flush(); });
  }

  send(line: string): void { this.proc.stdin.write(`${line}\n`); }
  end(): void { this.proc.stdin.end(); }
  kill(): void { this.proc.kill('SIGKILL'); }
}

/** Sends `op` to every child at once; returns each one's addresses, failing on any error. */
async function everyone(children: Child[], op: 'add' | 'del'): Promise<string[][]> {
  for (const c of children) c.send(op);
  const answers = await Promise.all(children.map((c) => c.nextLine()));
  return answers.map((line, i) => {
    const parsed = (() => { try { return JSON.parse(line) as { ips?: string[]; error?: string }; } catch { return { error: line }; } })();
    assert.ok(parsed.ips, `${op} ctr-${i} failed: ${parsed.error}`);
    return parsed.ips;
  });
}

test(`${PROCS} processes allocating at once get distinct addresses, and releasing at once leaves nothing`, { timeout: 180_000 }, async () => {
  const script = join(root, 'child.mjs');
  writeFileSync(script, CHILD);
  const dataDir = join(root, 'data');
  const dir = join(dataDir, 'conc');
  const mods = [moduleUrl('allocator'), moduleUrl('config'), moduleUrl('disk-store')];
  const children = Array.from({ length: PROCS }, (_, i) => new Child(script, [dataDir, `ctr-${i}`, ...mods]));
  try {
    const ready = await Promise.all(children.map((c) => c.nextLine()));
    assert.ok(ready.every((l) => l === 'ready'), ready.find((l) => l !== 'ready'));

    const added = await everyone(children, 'add');
    assert.ok(added.every((ips) => ips.length === 1));
    const flat = added.flat();
    assert.equal(new Set(flat).size, PROCS, 'every address distinct');
    for (const ip of flat) assert.match(ip, /^10\.244\.1\.(\d+)$/);
    assert.ok(!flat.includes('10.244.1.1'), 'gateway never handed out');
    const files = readdirSync(dir);
    assert.deepEqual(files.filter((f) => f.startsWith('10.')).sort(), [...flat].sort());
    assert.deepEqual(files.filter((f) => !f.startsWith('10.')), ['last_reserved_ip.0'], 'no temp files or lock left');

    const released = await everyone(children, 'del');
    assert.deepEqual(released, added, 'each process released exactly its own address');
    assert.deepEqual(readdirSync(dir), ['last_reserved_ip.0'], 'no records, temp files or lock left behind');

    for (const c of children) c.end();
    assert.deepEqual(new Set(await Promise.all(children.map((c) => c.exited))), new Set([0]));
  } finally {
    for (const c of children) c.kill();
  }
});

test('a plugin SIGKILLed while holding the lock does not wedge the others', { timeout: 60_000 }, async () => {
  const dataDir = join(root, 'killed');
  const script = join(root, 'holder.mjs');
  writeFileSync(script, `
const { DiskStore } = await import(process.argv[3]);
await new DiskStore(process.argv[2], 'conc').withLock(() => {
  process.stdout.write('holding\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until killed
});
`);
  const holder = new Child(script, [dataDir, moduleUrl('disk-store')]);
  try {
    assert.equal(await holder.nextLine(), 'holding');
    assert.ok(readdirSync(join(dataDir, 'conc')).includes('lock'));
    holder.kill();
    await holder.exited;
    const t0 = Date.now();
    assert.equal(await new DiskStore(dataDir, 'conc', { lockTimeoutMs: 2000 }).withLock(() => 'after'), 'after');
    assert.ok(Date.now() - t0 < 1000, `stealing took ${Date.now() - t0} ms`);
    assert.deepEqual(readdirSync(join(dataDir, 'conc')), []);
  } finally {
    holder.kill();
  }
});
