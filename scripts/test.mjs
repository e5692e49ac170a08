// Runs the test suite with node's own runner on the compiled tests.
// Usage: node scripts/test.mjs [unit|ns|system ...]   (default: all layers)
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

execFileSync('node', ['scripts/build.mjs'], { stdio: 'inherit' });
const layers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'ns', 'system'];
const files = [];
const walk = (dir) => {
  let entries = [];
  try { entries = readdirSync(dir); } catch { return; }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p); else if (p.endsWith('.test.js')) files.push(p);
  }
};
const out = process.env.FLATNET_OUT || 'dist';
for (const layer of layers) walk(join(out, 'test', layer));
if (files.length === 0) { console.error('no test files found for', layers.join(',')); process.exit(1); }
const r = spawnSync('node', ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
