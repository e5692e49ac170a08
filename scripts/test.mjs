// Runs the test suite with node's own runner on the compiled tests.
// Usage: node scripts/test.mjs [unit|ns|system|load ...]   (default: all layers)
// The `load` layer's tests keep both cores busy on purpose (spin loops, a 200-pod rollout): they run
// after the others, one file at a time, so they never starve an unrelated test running beside them.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

execFileSync('node', ['scripts/build.mjs'], { stdio: 'inherit' });
const layers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'ns', 'system', 'load'];
const out = process.env.FLATNET_OUT || 'dist';
const filesOf = (layer) => {
  const files = [];
  const walk = (dir) => {
    let entries = [];
    try { entries = readdirSync(dir); } catch { return; }
    for (const e of entries.sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p); else if (p.endsWith('.test.js')) files.push(p);
    }
  };
  walk(join(out, 'test', layer));
  return files;
};
const shared = layers.filter((l) => l !== 'load').flatMap(filesOf);
const alone = layers.includes('load') ? filesOf('load') : [];
if (shared.length + alone.length === 0) { console.error('no test files found for', layers.join(',')); process.exit(1); }

/** One run of node's runner, its output passed through; resolves with its exit code and its counts. */
function runTests(files, concurrency) {
  return new Promise((resolve) => {
    const child = spawn('node', ['--test', `--test-concurrency=${concurrency}`, ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (b) => { process.stdout.write(b); tail = (tail + b.toString()).slice(-4096); });
    child.on('close', (code) => {
      const count = (what) => Number(new RegExp(`^# ${what} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      resolve({ code: code ?? 1, pass: count('pass'), fail: count('fail') + count('cancelled') });
    });
  });
}

const runs = [];
if (shared.length) runs.push(await runTests(shared, 2));
if (alone.length) runs.push(await runTests(alone, 1));
const pass = runs.reduce((n, r) => n + r.pass, 0);
const fail = runs.reduce((n, r) => n + r.fail, 0);
console.log(`${pass} passed, ${fail} failed`);
process.exit(runs.some((r) => r.code !== 0) ? 1 : 0);
