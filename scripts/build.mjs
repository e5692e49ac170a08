// Builds flatnet: type-checks and compiles everything with tsc into dist/, bundles the two Node
// executables with esbuild (one file loads fastest), and compiles the flatnet-cni shim with cc.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

// FLATNET_OUT builds elsewhere (parallel work); FLATNET_LENIENT=1 keeps going past type errors.
const out = process.env.FLATNET_OUT || 'dist';
rmSync(out, { recursive: true, force: true });
try {
  execFileSync('node_modules/.bin/tsc', ['-p', 'tsconfig.json', '--outDir', out], { stdio: 'inherit' });
} catch (err) {
  if (process.env.FLATNET_LENIENT !== '1') process.exit(1);
}
mkdirSync(`${out}/bin`, { recursive: true });
// A build outside the repo still resolves the npm dependencies of its compiled modules.
if (!existsSync(`${out}/node_modules`) && resolve(out) !== resolve('dist')) symlinkSync(resolve('node_modules'), `${out}/node_modules`);

const common = { bundle: true, platform: 'node', target: 'node20', minify: false, legalComments: 'none' };
// The Node plugin is CommonJS: Node's ESM loader alone adds ~10 ms to every start. The shim runs it
// when no agent serves the node's netns.
await build({ ...common, format: 'cjs', entryPoints: ['src/cni/main.ts'], outfile: `${out}/bin/flatnet-cni-node`,
  banner: { js: '#!/usr/bin/env node' } });
writeFileSync(`${out}/bin/package.json`, JSON.stringify({ type: 'commonjs' }) + '\n');
// flatnet-cni itself is a C shim: a runtime starts it per call, and a Node start alone costs more than a whole ADD.
const cc = process.env.CC || 'cc';
// flatnet-nft-dump reads nft set elements over netlink: the proxy's restart reads 60,000 of them back.
for (const [bin, src] of [['flatnet-cni', 'src/cni/shim.c'], ['flatnet-nft-dump', 'src/kernel/nft-dump.c'], ['flatnet-nflog-read', 'src/kernel/nflog-read.c']]) {
  try {
    execFileSync(cc, ['-O2', '-Wall', '-o', `${out}/bin/${bin}`, src], { stdio: 'inherit' });
  } catch (err) {
    const missing = err.code === 'ENOENT';
    console.error(missing
      ? `build: no C compiler "${cc}" to build ${bin} from ${src}: install gcc and libc6-dev (scripts/setup.sh does), or set CC`
      : `build: compiling ${src} with ${cc} failed`);
    process.exit(1);
  }
}
// etcd3 loads its .proto files from beside its own modules at run time, so it stays in node_modules.
// Split into chunks: `serve` and `probe` start in every pod and must not load the etcd client (~200 ms).
await build({ ...common, format: 'esm', entryPoints: { flatnet: 'src/cli/main.ts' }, outdir: `${out}/bin`, external: ['etcd3'],
  splitting: true, chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' },
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
// The `flatnet ui` page's script, for the browser: served by flatnet itself, no CDN.
await build({ bundle: true, platform: 'browser', format: 'iife', target: 'es2022', legalComments: 'none', entryPoints: ['src/ui/page/app.ts'], outfile: `${out}/ui/app.js` });
// The shebang goes on the entry only (a banner would put it on every chunk).
writeFileSync(`${out}/bin/flatnet.mjs`, '#!/usr/bin/env node\n' + readFileSync(`${out}/bin/flatnet.mjs`, 'utf8'));
for (const f of ['flatnet-cni-node', 'flatnet.mjs']) chmodSync(`${out}/bin/${f}`, 0o755);
