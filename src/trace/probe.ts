// The one real, tagged packet: from the source's network namespace, a TCP connect from the tag as
// source port (its SYN is the traced packet), a UDP datagram from it, or one ICMP echo with it as id.
import { spawn } from 'node:child_process';
import type { TraceProtocol } from './arm.js';

export interface ProbeResult { ok: boolean; detail: string }

// Runs inside the source namespace as its own node process: Node cannot enter a namespace itself.
const SCRIPT = `
const [host, port, tag, proto, ms] = process.argv.slice(1);
const done = (ok, detail) => { console.log(JSON.stringify({ ok, detail })); process.exit(0); };
if (proto === 'tcp') {
  const s = require('net').connect({ host, port: Number(port), localPort: Number(tag) });
  s.setTimeout(Number(ms), () => { s.destroy(); done(false, 'no answer (timeout)'); });
  s.on('connect', () => { s.destroy(); done(true, 'connected'); });
  s.on('error', (e) => done(false, e.code || e.message));
} else {
  const s = require('dgram').createSocket('udp4');
  s.bind(Number(tag), () => s.send(Buffer.from('flatnet trace'), Number(port), host, (e) => {
    if (e) done(false, e.code || e.message);
    s.on('message', () => done(true, 'answered'));
    s.on('error', (err) => done(false, err.code || err.message));
    setTimeout(() => done(false, 'sent, no answer'), Number(ms));
  }));
}`;

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

export async function sendTagged(netnsPath: string, o: { host: string; port: number; tag: number; protocol: TraceProtocol; timeoutMs: number }): Promise<ProbeResult> {
  if (o.protocol === 'icmp') {
    const r = await run('nsenter', [`--net=${netnsPath}`, 'ping', '-n', '-c', '1', '-W', String(Math.ceil(o.timeoutMs / 1000)), '-e', String(o.tag), o.host]);
    return { ok: r.code === 0, detail: r.code === 0 ? 'echo reply' : 'no echo reply' };
  }
  const r = await run('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', SCRIPT, o.host, String(o.port), String(o.tag), o.protocol, String(o.timeoutMs)]);
  try { return JSON.parse(r.out.trim().split('\n').pop() ?? '') as ProbeResult; } catch { return { ok: false, detail: r.out.trim() || `exit ${r.code}` }; }
}
