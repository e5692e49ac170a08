// The warm CNI server (src/cni/server.ts) for ns tests: one per test netns, started in a child process
// (nsenter execs node, so the child's pid is the server's) and ended by pid; and the C shim alone, with
// no flatnet-cni-node beside it, so a call through it succeeds only through a server.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPath, type TestScope } from './scope.js';
import { FLATNET_CNI } from './plugin.js';
import { CNI_SOCKET_DIR } from '../../src/cni/server.js';

export interface RunningServer { child: ChildProcess; socketPath: string }

export interface WarmServers {
  /** flatnet-cni alone in a directory of its own. */
  loneShim: string;
  /** `hooksModule`: a file whose `hooks` export the server takes (startCniServer's `hooks` option). */
  start(netns: string, opts?: { hooksModule?: string }): Promise<RunningServer>;
}

export function warmServers(scope: TestScope): WarmServers {
  // A socket a killed server leaves behind is ours to remove, and so is the directory if we made it.
  const dirExisted = existsSync(CNI_SOCKET_DIR);
  scope.onCleanup(() => { if (!dirExisted) try { rmdirSync(CNI_SOCKET_DIR); } catch { /* another server uses it */ } });
  const loneDir = join(scope.dir, 'lone');
  mkdirSync(loneDir, { recursive: true });
  const loneShim = join(loneDir, 'flatnet-cni');
  copyFileSync(FLATNET_CNI, loneShim);
  const script = join(scope.dir, 'server.mjs');
  writeFileSync(script, `
const { startCniServer } = await import(process.argv[2]);
const hooks = process.argv[3] ? (await import(process.argv[3])).hooks : undefined;
const server = await startCniServer({ hooks });
process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)); });
process.stdout.write(JSON.stringify({ socketPath: server.socketPath }) + '\\n');
`);
  const serverModule = new URL('../../src/cni/server.js', import.meta.url).href;
  return {
    loneShim,
    start(netns, opts = {}) {
      const argv = [`--net=${netnsPath(netns)}`, process.execPath, script, serverModule, ...(opts.hooksModule ? [opts.hooksModule] : [])];
      const child = spawn('nsenter', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      scope.adoptProcess(child);
      return new Promise((resolve, reject) => {
        let out = '';
        let err = '';
        child.stderr!.on('data', (b: Buffer) => { err += b; });
        child.stdout!.on('data', (b: Buffer) => {
          out += b;
          if (!out.includes('\n')) return;
          const { socketPath } = JSON.parse(out) as { socketPath: string };
          scope.onCleanup(() => { try { unlinkSync(socketPath); } catch { /* closed cleanly */ } });
          resolve({ child, socketPath });
        });
        child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
      });
    },
  };
}
