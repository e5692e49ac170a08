// A throwaway etcd (Debian's etcd-server, 3.4) for one test file: data and sockets in the scope's temp
// dir, client and peer traffic on unix sockets only, so no test ever opens a TCP port or sends a packet
// in the root network namespace.
//
// etcd 3.4 parses every URL flag as "scheme://host:port" with no path, so an absolute socket path is
// rejected ("URL address does not have the form host:port"). A unix URL's host:port is a socket file
// name relative to etcd's working directory: `unix://client.sock:1` listens on ./client.sock:1. So
// etcd runs with cwd = the temp dir, and the client dials the absolute path with grpc-js's
// `unix:///abs/dir/client.sock:1` target.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import type { TestScope } from './scope.js';

export interface EtcdServer {
  /** The client endpoint, for EtcdStore({ endpoints }) or new Etcd3({ hosts }). */
  endpoint: string;
  dir: string;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
}

const CLIENT = 'client.sock:1';
const PEER = 'peer.sock:1';

export async function startEtcd(scope: TestScope, name = 'etcd', timeoutMs = 15_000): Promise<EtcdServer> {
  const dir = join(scope.dir, name);
  mkdirSync(dir, { recursive: true });
  // The socket path must fit sun_path (108 bytes).
  const socket = join(dir, CLIENT);
  if (socket.length > 100) throw new Error(`etcd socket path ${socket} is too long for a unix socket`);
  const logPath = join(dir, 'etcd.log');
  const log = openSync(logPath, 'a');
  const child = spawn('etcd', [
    '--name', name,
    '--data-dir', join(dir, 'data'),
    '--listen-client-urls', `unix://${CLIENT}`,
    '--advertise-client-urls', `unix://${CLIENT}`,
    '--listen-peer-urls', `unix://${PEER}`,
    '--initial-advertise-peer-urls', `unix://${PEER}`,
    '--initial-cluster', `${name}=unix://${PEER}`,
    '--initial-cluster-state', 'new',
    // No self-dial for the JSON gateway: nothing here uses it.
    '--enable-grpc-gateway=false',
  ], { cwd: dir, stdio: ['ignore', log, log] });
  scope.adoptProcess(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `unix://${socket}`;
  const server: EtcdServer = {
    endpoint, dir, pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
      if (!done) { child.kill('SIGKILL'); await exited; }
    },
  };
  try {
    await waitHealthy(endpoint, socket, child.pid!, () => child.exitCode !== null || child.signalCode !== null, timeoutMs);
  } catch (err) {
    await server.stop();
    const tail = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n') : '';
    throw new Error(`etcd did not become healthy: ${(err as Error).message}\n--- etcd.log (tail) ---\n${tail}`);
  }
  return server;
}

/** Healthy = the socket exists and a linearizable status call answers (there is a leader). */
async function waitHealthy(endpoint: string, socket: string, pid: number, gone: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'socket not created';
  while (Date.now() < deadline) {
    if (gone()) throw new Error(`etcd (pid ${pid}) exited`);
    if (existsSync(socket)) {
      // A fresh client per round: grpc-js backs off reconnecting a channel whose first dial failed.
      const probe = new Etcd3({ hosts: endpoint });
      try {
        await probe.kv.range({ key: Buffer.from('/health') }, { deadline: Date.now() + 1000 });
        return;
      } catch (err) {
        last = err;
      } finally {
        probe.close();
      }
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${last instanceof Error ? last.message : String(last)}`);
}
