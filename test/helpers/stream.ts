// A pod-to-pod TCP stream and a probe loop for tests that disturb the cluster while traffic flows: one
// connection, a line every 20 ms, each echoed back by `flatnet serve`; the longest gap between echoes
// tells whether bytes kept arriving the whole time.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestScope } from './scope.js';

export interface StreamResult { sent: number; got: number; maxGap: number; error?: string }

export interface Stream {
  /** Ends the stream and returns what it saw; `error` is set when the connection broke. */
  stop(): Promise<StreamResult>;
}

/** Starts a stream from inside the pod namespace `fromNetns` to `ip:port`; resolves once echoes flow. */
export async function startStream(scope: TestScope, fromNetns: string, ip: string, port: number): Promise<Stream> {
  // The server may not listen yet when its pod reports Running: connection refused is retried until
  // the stream flows; after that any error is the stream breaking.
  const streamer = spawn('nsenter', [`--net=/run/netns/${fromNetns}`, process.execPath, '-e', `
    const net = require('node:net');
    let s, iv, sent = 0, got = 0, maxGap = 0, last = 0, buf = '', tries = 0;
    const open = () => {
      s = net.connect(${port}, ${JSON.stringify(ip)});
      s.setEncoding('utf8');
      s.on('connect', () => { iv = setInterval(() => { s.write('ping ' + (sent++) + '\\n'); }, 20); });
      s.on('data', (d) => { buf += d; const lines = buf.split('\\n'); buf = lines.pop(); for (const l of lines) if (l.startsWith('ping')) { got++; const now = Date.now(); if (last) maxGap = Math.max(maxGap, now - last); else console.log('flowing'); last = now; } });
      s.on('error', (e) => {
        if (!iv && e.code === 'ECONNREFUSED' && tries++ < 100) { setTimeout(open, 100); return; }
        console.log(JSON.stringify({ error: e.message, sent, got, maxGap })); process.exit(1);
      });
    };
    open();
    process.stdin.on('data', () => { clearInterval(iv); setTimeout(() => { console.log(JSON.stringify({ sent, got, maxGap: Math.max(maxGap, Date.now() - 300 - last) })); s.end(); process.exit(0); }, 300); });
  `], { stdio: ['pipe', 'pipe', 'pipe'] });
  scope.adoptProcess(streamer);
  // Listen for the exit now: a streamer that ends early must be reported, not awaited forever.
  const exited = new Promise<number | null>((resolve) => streamer.once('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  streamer.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  streamer.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const deadline = Date.now() + 10_000;
  while (!out.includes('flowing')) {
    if (streamer.exitCode !== null || Date.now() > deadline) throw new Error(`the stream to ${ip}:${port} never flowed: ${out}${err}`);
    await sleep(50);
  }
  return {
    async stop() {
      if (streamer.exitCode === null) streamer.stdin!.write('stop\n');
      const code = await exited;
      const last = out.trim().split('\n').pop();
      if (!last || !last.startsWith('{')) throw new Error(`the streamer printed no result (exit ${code}): ${out}${err}`);
      return JSON.parse(last) as StreamResult;
    },
  };
}

export interface Prober {
  /** Stops probing; returns how many probes ran and the failures. */
  stop(): Promise<{ probes: number; failures: string[] }>;
  readonly probes: number;
}

/**
 * A new TCP connection from inside the pod namespace `fromNetns` to each `ip:port` target in turn,
 * every 200 ms, until stopped: each must be answered (`flatnet serve` speaks first) within 2 s. One
 * process does them all, so a busy machine does not starve the probes of process start-ups.
 */
export async function startProbes(scope: TestScope, fromNetns: string, targets: string[]): Promise<Prober> {
  const prober = spawn('nsenter', [`--net=/run/netns/${fromNetns}`, process.execPath, '-e', `
    const net = require('node:net');
    const targets = ${JSON.stringify(targets)};
    let probes = 0, stop = false;
    const failures = [];
    const one = (host, port) => new Promise((resolve) => {
      const s = net.connect(port, host);
      const timer = setTimeout(() => { s.destroy(); resolve('no answer within 2 s'); }, 2000);
      s.once('data', () => { clearTimeout(timer); s.destroy(); resolve(undefined); });
      s.once('error', (e) => { clearTimeout(timer); resolve(e.message); });
    });
    process.stdin.on('data', () => { stop = true; });
    (async () => {
      while (!stop) {
        for (const t of targets) {
          const i = t.lastIndexOf(':');
          const err = await one(t.slice(0, i), Number(t.slice(i + 1)));
          probes++;
          if (err) failures.push(t + ': ' + err + ' at ' + new Date().toISOString());
          console.log('probes ' + probes);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      console.log(JSON.stringify({ probes, failures }));
      process.exit(0);
    })();
  `], { stdio: ['pipe', 'pipe', 'pipe'] });
  scope.adoptProcess(prober);
  const exited = new Promise<number | null>((resolve) => prober.once('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  let probes = 0;
  prober.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    const m = /probes (\d+)\n[^\n]*$/.exec(out);
    if (m) probes = Number(m[1]);
  });
  prober.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  return {
    get probes() { return probes; },
    async stop() {
      if (prober.exitCode === null) prober.stdin!.write('stop\n');
      const code = await exited;
      const last = out.trim().split('\n').pop();
      if (!last || !last.startsWith('{')) throw new Error(`the prober printed no result (exit ${code}): ${out.slice(-500)}${err}`);
      return JSON.parse(last) as { probes: number; failures: string[] };
    },
  };
}
