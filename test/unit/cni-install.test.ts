// Why: the DaemonSet's init container runs this install on every node; it must land files whole, change
// nothing on a re-run and never write through a symlink. All against a temporary root, removed after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN_DIR, CONF_DIR, CONFLIST_NAME, TEMP_PREFIX, installCni, planInstall, uninstallCni, type Have } from '../../src/install/cni-install.js';

const CLI = fileURLToPath(new URL('../../bin/flatnet.mjs', import.meta.url));
const MODULE = new URL('../../src/install/cni-install.js', import.meta.url).href;

/** A source dir with two fake binaries and a conflist, and an empty target root; both removed after fn. */
function withRoots(fn: (t: { src: string; root: string; conflist: string; setBin: (body: string) => void }) => void): void {
  const top = mkdtempSync(join(tmpdir(), 'fn-install-'));
  try {
    const src = join(top, 'src');
    const root = join(top, 'root');
    mkdirSync(src); mkdirSync(root);
    const setBin = (body: string) => {
      writeFileSync(join(src, 'flatnet-cni'), `#!/bin/sh\n# shim ${body}\n`);
      writeFileSync(join(src, 'flatnet-cni-node'), `#!/bin/sh\n# node plugin ${body}\n`);
    };
    setBin('v1');
    const conflist = join(src, 'net.conflist');
    writeFileSync(conflist, JSON.stringify({ cniVersion: '1.0.0', name: 'flatnet', plugins: [{ type: 'flatnet-cni' }] }) + '\n');
    fn({ src, root, conflist, setBin });
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
}

const temps = (root: string) => [BIN_DIR, CONF_DIR].flatMap((d) => {
  try { return readdirSync(join(root, d)).filter((n) => n.startsWith(TEMP_PREFIX)); } catch { return []; }
});

test('a fresh install puts both binaries (0755) and the conflist (0644) in place, nothing else', () => withRoots(({ src, root, conflist }) => {
  const r = installCni(root, { binDir: src, conflist });
  // The fallback before the shim that runs it, the conflist naming the plugin last.
  assert.deepEqual(r.written, [`${BIN_DIR}/flatnet-cni-node`, `${BIN_DIR}/flatnet-cni`, `${CONF_DIR}/${CONFLIST_NAME}`]);
  assert.equal(statSync(join(root, BIN_DIR, 'flatnet-cni')).mode & 0o777, 0o755);
  assert.equal(statSync(join(root, CONF_DIR, CONFLIST_NAME)).mode & 0o777, 0o644);
  assert.equal(readFileSync(join(root, CONF_DIR, CONFLIST_NAME), 'utf8'), readFileSync(conflist, 'utf8'));
  assert.deepEqual(readdirSync(join(root, BIN_DIR)), ['flatnet-cni', 'flatnet-cni-node']);
  assert.deepEqual(readdirSync(join(root, CONF_DIR)), [CONFLIST_NAME]);
}));

test('a re-run changes nothing: no write, same inodes and times', () => withRoots(({ src, root, conflist }) => {
  installCni(root, { binDir: src, conflist });
  const before = [`${BIN_DIR}/flatnet-cni`, `${CONF_DIR}/${CONFLIST_NAME}`].map((p) => statSync(join(root, p)));
  const r = installCni(root, { binDir: src, conflist });
  assert.deepEqual(r.written, []);
  assert.equal(r.unchanged.length, 3);
  const after = [`${BIN_DIR}/flatnet-cni`, `${CONF_DIR}/${CONFLIST_NAME}`].map((p) => statSync(join(root, p)));
  assert.deepEqual(after.map((s) => [s.ino, s.mtimeMs]), before.map((s) => [s.ino, s.mtimeMs]));
}));

test('a newer binary replaces the old by rename: a plugin already open keeps reading the old bytes whole', () => withRoots(({ src, root, setBin }) => {
  installCni(root, { binDir: src });
  const target = join(root, BIN_DIR, 'flatnet-cni');
  const oldIno = statSync(target).ino;
  const fd = openSync(target, 'r'); // a runtime exec'ing the old plugin right now
  try {
    setBin('v2');
    const r = installCni(root, { binDir: src });
    assert.deepEqual(r.written, [`${BIN_DIR}/flatnet-cni-node`, `${BIN_DIR}/flatnet-cni`]);
    assert.match(readFileSync(target, 'utf8'), /shim v2/);
    assert.notEqual(statSync(target).ino, oldIno, 'a new inode, not the old file rewritten in place');
    const buf = Buffer.alloc(64);
    const n = readSync(fd, buf, 0, 64, 0);
    assert.match(buf.subarray(0, n).toString(), /shim v1/);
  } finally { closeSync(fd); }
  assert.deepEqual(temps(root), []);
}));

test('an install interrupted before its rename leaves the old file whole and no temp file', () => withRoots(({ src, root, conflist, setBin }) => {
  installCni(root, { binDir: src, conflist });
  setBin('v2');
  let seen = '';
  assert.throws(() => installCni(root, { binDir: src, conflist }, { beforeRename: (tmp) => { seen = tmp; throw new Error('killed'); } }), /killed/);
  assert.ok(seen.includes(TEMP_PREFIX));
  assert.match(readFileSync(join(root, BIN_DIR, 'flatnet-cni'), 'utf8'), /shim v1/);
  assert.deepEqual(temps(root), []);
}));

test('an install killed (SIGKILL) just before its rename leaves the old file whole; the next run finishes and tidies', async () => {
  const top = mkdtempSync(join(tmpdir(), 'fn-install-kill-'));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const src = join(top, 'src');
    const root = join(top, 'root');
    mkdirSync(src); mkdirSync(root);
    const setBin = (v: string) => { for (const b of ['flatnet-cni', 'flatnet-cni-node']) writeFileSync(join(src, b), `#!/bin/sh\n# ${b} ${v}\n`); };
    setBin('v1');
    installCni(root, { binDir: src });
    setBin('v2');
    // The child stops for good right before its first rename, says so, and is killed there.
    const script = `const { installCni } = await import(${JSON.stringify(MODULE)});
      installCni(${JSON.stringify(root)}, { binDir: ${JSON.stringify(src)} }, { beforeRename: () => {
        process.stdout.write('at-rename\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); } });`;
    child = spawn('node', ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: string) => { out += d; if (out.includes('at-rename')) resolve(); });
      child!.once('exit', (code) => reject(new Error(`child exited ${code} before its rename`)));
    });
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    assert.match(readFileSync(join(root, BIN_DIR, 'flatnet-cni-node'), 'utf8'), /v1/, 'the old file, whole');
    assert.equal(temps(root).length, 1, 'the half-done file is the dot-named temp, nothing a runtime runs or loads');
    const r = installCni(root, { binDir: src });
    assert.equal(r.removedTemps.length, 1);
    assert.deepEqual(temps(root), []);
    assert.match(readFileSync(join(root, BIN_DIR, 'flatnet-cni'), 'utf8'), /v2/);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(top, { recursive: true, force: true });
  }
});

test('a temp file a killed install left (kill -9 mid-write) is removed by the next run, and no runtime loads it meanwhile', () => withRoots(({ src, root, conflist }) => {
  mkdirSync(join(root, CONF_DIR), { recursive: true });
  mkdirSync(join(root, BIN_DIR), { recursive: true });
  writeFileSync(join(root, CONF_DIR, `${TEMP_PREFIX}${CONFLIST_NAME}.999`), '{"cniVersion":"1.0.0","na');
  writeFileSync(join(root, BIN_DIR, `${TEMP_PREFIX}flatnet-cni.999`), '#!/bin/sh\n# ha');
  const r = installCni(root, { binDir: src, conflist });
  assert.equal(r.removedTemps.length, 2);
  assert.deepEqual(temps(root), []);
  assert.equal(r.warnings.length, 0, 'a dot-named temp file is no conflist');
}));

test('a foreign conflist that sorts before ours is kept untouched and reported', () => withRoots(({ src, root, conflist }) => {
  mkdirSync(join(root, CONF_DIR), { recursive: true });
  const foreign = join(root, CONF_DIR, '05-other.conflist');
  writeFileSync(foreign, '{"other":true}\n');
  const mtime = statSync(foreign).mtimeMs;
  const r = installCni(root, { binDir: src, conflist });
  assert.match(r.warnings[0] ?? '', /05-other\.conflist sorts before 10-flatnet\.conflist/);
  assert.equal(readFileSync(foreign, 'utf8'), '{"other":true}\n');
  assert.equal(statSync(foreign).mtimeMs, mtime);
  assert.ok(existsSync(join(root, CONF_DIR, CONFLIST_NAME)));
}));

test('a symlink at a target or on the way is refused before anything is written', () => withRoots(({ src, root, conflist }) => {
  const elsewhere = join(root, '..', 'elsewhere');
  mkdirSync(elsewhere);
  mkdirSync(join(root, BIN_DIR), { recursive: true });
  symlinkSync(join(elsewhere, 'victim'), join(root, BIN_DIR, 'flatnet-cni'));
  assert.throws(() => installCni(root, { binDir: src, conflist }), /opt\/cni\/bin\/flatnet-cni is a symlink/);
  assert.ok(lstatSync(join(root, BIN_DIR, 'flatnet-cni')).isSymbolicLink());
  assert.deepEqual(readdirSync(elsewhere), []);
  assert.equal(existsSync(join(root, CONF_DIR)), false, 'refused before the conflist was written');

  rmSync(join(root, 'opt'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  symlinkSync(elsewhere, join(root, 'etc', 'cni'));
  assert.throws(() => installCni(root, { binDir: src, conflist }), /etc\/cni is a symlink/);
  assert.deepEqual(readdirSync(elsewhere), []);
  assert.equal(existsSync(join(root, 'opt')), false);
}));

test('the plan is pure data: a mode change alone is a write, equal bytes and mode are not', () => {
  const content = Buffer.from('x');
  const want = { path: `${BIN_DIR}/flatnet-cni`, content, mode: 0o755 };
  const have = new Map<string, Have>([[want.path, { kind: 'file', content, mode: 0o644 }]]);
  assert.equal(planInstall([want], have, [], []).writes.length, 1);
  have.set(want.path, { kind: 'file', content, mode: 0o755 });
  assert.deepEqual(planInstall([want], have, [], []).unchanged, [want.path]);
  have.set(want.path, { kind: 'dir' });
  assert.match(planInstall([want], have, [], []).refused[0], /not a regular file/);
});

test('flatnet install-cni --root installs, re-runs unchanged, and --uninstall removes only its files', () => withRoots(({ src, root, conflist }) => {
  const run = (...args: string[]) => execFileSync('node', [CLI, 'install-cni', '--root', root, ...args], { encoding: 'utf8' });
  assert.match(run('--source', src, '--conflist', conflist), /installed .*opt\/cni\/bin\/flatnet-cni\n/);
  assert.doesNotMatch(run('--source', src, '--conflist', conflist), /installed/);
  writeFileSync(join(root, BIN_DIR, 'loopback'), 'not ours');
  assert.match(run('--uninstall'), /removed .*10-flatnet\.conflist/);
  assert.deepEqual(readdirSync(join(root, BIN_DIR)), ['loopback']);
  assert.deepEqual(readdirSync(join(root, CONF_DIR)), []);
  const noRoot = spawnSync('node', [CLI, 'install-cni'], { encoding: 'utf8' });
  assert.equal(noRoot.status, 2);
  assert.match(noRoot.stderr, /--root is required/);
}));

test('the build\'s own binaries install by default (from beside flatnet.mjs)', () => withRoots(({ root }) => {
  execFileSync('node', [CLI, 'install-cni', '--root', root], { encoding: 'utf8' });
  assert.deepEqual(readdirSync(join(root, BIN_DIR)), ['flatnet-cni', 'flatnet-cni-node']);
  assert.equal(statSync(join(root, BIN_DIR, 'flatnet-cni')).mode & 0o111, 0o111);
  assert.equal(uninstallCni(root).length, 2);
}));
