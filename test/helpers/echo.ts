// A TCP server that answers every connection with the client address it saw, and its client.
// Tests run it inside namespaces to see whether a source address was rewritten (NAT) or kept.
//   node echo.js serve PORT          (prints "listening" once ready)
//   node echo.js ask HOST PORT       (prints the server's answer; exit 1 on failure or timeout)
import { createServer, connect } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { netnsPath } from './scope.js';

export const ECHO_SCRIPT = fileURLToPath(import.meta.url);

function serve(port: number): void {
  createServer((s) => s.end(`${s.remoteAddress?.replace(/^::ffff:/, '')}\n`)).listen(port, () => console.log('listening'));
}

function ask(host: string, port: number): void {
  const timer = setTimeout(() => { console.error('timeout'); process.exit(1); }, 3000);
  const s = connect(port, host);
  let data = '';
  s.on('data', (b) => { data += b.toString(); });
  s.on('end', () => { clearTimeout(timer); process.stdout.write(data); });
  s.on('error', (e) => { console.error(e.message); process.exit(1); });
}

/** Starts the echo server inside `netns` and resolves once it listens. */
export function startEchoServer(netns: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath(netns)}`, process.execPath, ECHO_SCRIPT, 'serve', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', () => resolve(child));
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`echo server in ${netns} exited with ${code}`)));
  });
}

/** Connects from inside `netns`; resolves with the address the server saw. */
export function askEcho(netns: string, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath(netns)}`, process.execPath, ECHO_SCRIPT, 'ask', host, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`echo ${host}:${port} from ${netns}: ${err.trim() || code}`))));
  });
}

if (process.argv[1] === ECHO_SCRIPT) {
  const [mode, a, b] = process.argv.slice(2);
  if (mode === 'serve') serve(Number(a));
  else if (mode === 'ask') ask(a, Number(b));
  else { console.error('usage: echo.js serve PORT | ask HOST PORT'); process.exit(2); }
}
