// The warm side of flatnet-cni: a unix socket in the agent's process that answers CNI requests with
// handleRequest, so a call costs the C shim's start (~1 ms) instead of a Node start (~60 ms).
// One server per network namespace: the shim finds it by the inode of its own /proc/self/ns/net.
//
// Wire protocol (one request per connection, simple for C):
//   request = "KEY=VALUE\0" for each CNI_* and PATH entry, then "\0", then stdin until the client's SHUT_WR
//   answer  = exit code in ASCII decimal, "\n", then stdout exactly as the plugin process prints it; then close
import { chmodSync, mkdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { handleRequest, MAX_CONFIG_BYTES, oversizeAnswer, versionFromHead, type CniAnswer, type RequestHooks } from './plugin.js';
import type { CniResult } from './types.js';
import { useCommandRunner } from '../kernel/exec.js';
import { ShellPool } from '../kernel/shell-pool.js';
import { IpSession } from '../kernel/ip-session.js';
import { useIpSession } from '../kernel/ip.js';
import { observeCniRequest } from '../metrics/registry.js';

export const CNI_SOCKET_DIR = '/run/flatnet/cni';
/** A configuration up to the plugin's limit, and an environment of up to 1 MiB. */
export const MAX_REQUEST_BYTES = MAX_CONFIG_BYTES + 1024 * 1024;
/** What an oversized request keeps: its environment and enough of the configuration to read its cniVersion. */
const HEAD_BYTES = 1024 * 1024 + 65536;
/** close() waits this long for requests in flight (an ADD takes ~25 ms). */
const CLOSE_GRACE_MS = 5_000;

/** The socket of the server for the network namespace at `nsPath` (the caller's by default). */
export function cniSocketPath(nsPath = '/proc/self/ns/net'): string {
  return `${CNI_SOCKET_DIR}/net-${statSync(nsPath).ino}.sock`;
}

/** The environment entries a plugin reads: CNI_* and PATH; a runtime's other variables stay out. */
export function isForwardedEnvKey(key: string): boolean {
  return key === 'PATH' || key.startsWith('CNI_');
}

export function encodeRequest(env: Record<string, string | undefined>, stdin: string | Buffer): Buffer {
  const entries = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && isForwardedEnvKey(e[0]))
    .map(([k, v]) => `${k}=${v}\0`);
  return Buffer.concat([Buffer.from(entries.join('') + '\0'), Buffer.from(stdin)]);
}

export class RequestFramingError extends Error {}

/** Splits a whole request into its environment and stdin; entries other than CNI_* and PATH are dropped. */
export function decodeRequest(buf: Buffer): { env: Record<string, string>; stdin: string } {
  const env: Record<string, string> = {};
  for (let pos = 0; ;) {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new RequestFramingError('request ends inside its environment (no empty entry)');
    if (end === pos) return { env, stdin: buf.toString('utf8', end + 1) };
    const entry = buf.toString('utf8', pos, end);
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new RequestFramingError(`environment entry ${JSON.stringify(entry.slice(0, 64))} is not KEY=VALUE`);
    const key = entry.slice(0, eq);
    if (isForwardedEnvKey(key)) env[key] = entry.slice(eq + 1);
    pos = end + 1;
  }
}

/** The answer as the shim relays it: byte for byte what the Node plugin process would print (main.ts). */
export function encodeAnswer(answer: CniAnswer): Buffer {
  return Buffer.from(`${answer.exitCode}\n${answer.stdout ? answer.stdout + '\n' : ''}`);
}

/** Parses an answer (the shim does this in C; tests and the bench use this one). */
export function decodeAnswer(buf: Buffer): CniAnswer {
  const nl = buf.indexOf(10);
  const code = nl > 0 ? buf.toString('ascii', 0, nl) : '';
  if (!/^\d{1,3}$/.test(code)) throw new RequestFramingError('answer does not start with an exit code line');
  return { exitCode: Number(code), stdout: buf.toString('utf8', nl + 1) };
}

/**
 * Work done in-process around a request, by the agent's features: afterAdd runs after a successful ADD
 * and before its answer goes back (the policy feature isolates the pod before ADD returns); an error
 * fails the ADD (code 999) and undoes it. afterDel runs after a successful DEL.
 */
export interface CniServerHooks {
  afterAdd?(env: Record<string, string>, result: CniResult): Promise<void>;
  afterDel?(env: Record<string, string>): Promise<void>;
}

export interface CniServer {
  socketPath: string;
  close(): Promise<void>;
}

export async function startCniServer(opts: { log?: (msg: string) => void; hooks?: CniServerHooks } = {}): Promise<CniServer> {
  const log = opts.log ?? (() => {});
  const socketPath = cniSocketPath();
  const dir = dirname(socketPath);
  try {
    unlinkSync(socketPath); // a killed server's leftover refuses connections; a live one is taken over
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  const open = new Set<Socket>();
  // allowHalfOpen: the client's SHUT_WR ends the request, and the answer still goes back on the same socket.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => { /* the client went away: nobody to answer */ });
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is read and dropped: the client's writes must not fail (a broken pipe
    // reads as "try again"), and the answer names the size as the plugin process does.
    socket.on('data', (b: Buffer) => {
      const over = size > MAX_REQUEST_BYTES;
      size += b.length;
      if (over) return;
      chunks.push(b);
      if (size > MAX_REQUEST_BYTES) chunks.splice(0, chunks.length, Buffer.concat(chunks).subarray(0, HEAD_BYTES));
    });
    socket.on('end', () => {
      const request = Buffer.concat(chunks);
      const reply = size > MAX_REQUEST_BYTES ? Promise.resolve(oversize(request, size)) : answer(request);
      void reply.then((out) => { if (!socket.destroyed) socket.end(out); });
    });
  });

  /** A request over the limit: its environment and the start of its configuration are all there is. */
  function oversize(head: Buffer, size: number): Buffer {
    const envEnd = head[0] === 0 ? 0 : head.indexOf('\0\0') + 1;
    if (envEnd <= 0) return garbled(head, new RequestFramingError(`request of ${size} bytes has no end of its environment in its first ${HEAD_BYTES}`));
    return encodeAnswer(oversizeAnswer(size - envEnd - 1, head.toString('utf8', envEnd + 1)));
  }

  function garbled(request: Buffer, err: Error): Buffer {
    log(`cni server: bad request: ${err.message}`);
    const msg = `flatnet-cni: bad request to the agent: ${err.message}`;
    const cniVersion = versionFromHead(request.toString('utf8', 0, Math.min(request.length, 65536)));
    return encodeAnswer({ exitCode: 1, stdout: JSON.stringify({ cniVersion, code: 999, msg }) });
  }

  /** The server's hooks bound to one request's environment (the pod's CNI_ARGS, CNI_CONTAINERID...). */
  function hooksFor(env: Record<string, string>): RequestHooks {
    const h = opts.hooks;
    if (!h) return {};
    return {
      ...(h.afterAdd ? { afterAdd: (result: CniResult) => h.afterAdd!(env, result) } : {}),
      ...(h.afterDel ? { afterDel: () => h.afterDel!(env) } : {}),
    };
  }

  async function answer(request: Buffer): Promise<Buffer> {
    try {
      const { env, stdin } = decodeRequest(request);
      const started = performance.now();
      const out = await handleRequest(env, stdin, hooksFor(env));
      observeCniRequest(env.CNI_COMMAND ?? '', (performance.now() - started) / 1000, errorCode(out));
      return encodeAnswer(out);
    } catch (err) {
      // handleRequest never throws; only a garbled request gets here.
      return garbled(request, err as Error);
    }
  }

  const listen = () => new Promise<void>((resolve, reject) => {
    // Root only: whoever can connect can delete any pod's network.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    server.once('error', reject);
    server.listen(socketPath, () => { server.off('error', reject); resolve(); });
  });
  // Once more if the last other server in this directory removed it between our mkdir and listen.
  await listen().catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return listen(); throw err; });
  chmodSync(socketPath, 0o600);
  const ino = statSync(socketPath).ino;
  // Warm, the cost of an ADD is its `ip` runs: the pod side is forked from a small shell (a third of a
  // fork of this process), the node side is a line to one persistent ip.
  const pool = new ShellPool(8);
  useCommandRunner(pool);
  // The node side of ADD goes to one persistent ip: no process at all.
  const session = new IpSession();
  useIpSession(session);
  log(`cni server: answering flatnet-cni on ${socketPath}`);

  let closed: Promise<void> | undefined;
  return {
    socketPath,
    close() {
      closed ??= new Promise<void>((resolve) => {
        // Only our own socket file: a server that took over the path keeps its own.
        try { if (statSync(socketPath).ino === ino) unlinkSync(socketPath); } catch { /* gone already */ }
        try { rmdirSync(dir); } catch { /* other servers' sockets are in it */ }
        // Requests in flight get their answers; a client that never finishes its request is cut off.
        server.close(() => { useCommandRunner(undefined); useIpSession(undefined); pool.close(); session.close(); resolve(); });
        setTimeout(() => { for (const s of open) s.destroy(); }, CLOSE_GRACE_MS).unref();
      });
      return closed;
    },
  };
}

/** The CNI error code of an answer: 0 on success, else the code its error JSON names (999 when unreadable). */
export function errorCode(answer: CniAnswer): number {
  if (answer.exitCode === 0) return 0;
  try {
    const code = (JSON.parse(answer.stdout) as { code?: unknown }).code;
    return typeof code === 'number' ? code : 999;
  } catch { return 999; }
}
