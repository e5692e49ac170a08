// The namespaces the proxy bench runs in, and the connect-latency client.
//
//   CLIENT --veth-- NODE (the proxy's ruleset, forwarding) --veth-- BACKENDS
//
// One CLIENT + NODE pair per proxy and size, all up at once so connect measurements can interleave;
// one BACKENDS namespace shared by every NODE. BACKENDS owns all of 10.244.0.0/16 through one `local`
// route on lo (so every endpoint address is its own without 30,000 addresses) and runs one TCP server
// on 0.0.0.0:8080 that accepts and closes. Every name starts with the run's random prefix; nothing is
// created in the root namespace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { spawnCommand } from '../../src/kernel/exec.js';
import { CIDRS, TARGET_PORT, SERVICE_PORT } from './cluster.js';

/** Node children get PATH only: NODE_EXTRA_CA_CERTS and the like slow every Node start. */
const CHILD_ENV = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
const CLIENT_NET = { client: '172.31.0.2', node: '172.31.0.1' };
/** NODE k <-> BACKENDS link: 172.30.k.0/24 (k from 1), distinct because BACKENDS is shared. */
const uplink = (k: number) => ({ node: `172.30.${k}.1`, backends: `172.30.${k}.2` });

/** Runs a tool; rejects with its stderr on a non-zero exit. */
export async function run(cmd: string, args: string[], input = ''): Promise<string> {
  const r = await spawnCommand(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Everything one run made: namespaces under its prefix and child processes, removed by name and pid. */
export class Scope {
  readonly prefix = `fnp${randomBytes(3).toString('hex')}`;
  readonly children = new Set<ChildProcess>();
  name(suffix: string): string { return `${this.prefix}-${suffix}`; }

  async netns(suffix: string): Promise<string> {
    const name = this.name(suffix);
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Namespaces with this run's prefix that still exist (the prefix is random per run: all of them are ours). */
  leftovers(): string[] {
    const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    return (r.stdout ?? '').split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n) => n?.startsWith(`${this.prefix}-`));
  }

  /** Synchronous, so it also runs from an 'exit' handler; returns what could not be removed. */
  cleanupSync(): string[] {
    for (const c of this.children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.children.clear();
    for (let attempt = 0; attempt < 3; attempt++) {
      const left = this.leftovers();
      if (left.length === 0) break;
      spawnSync('ip', ['-force', '-batch', '-'], { input: left.map((n) => `netns del ${n}\n`).join(''), stdio: ['pipe', 'ignore', 'ignore'] });
    }
    return this.leftovers();
  }

  installExitHandlers(): void {
    process.on('exit', () => { this.cleanupSync(); });
    for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
      process.on(sig, () => {
        process.stderr.write(`\nbench: ${sig}, removing namespaces ${this.prefix}-*\n`);
        const left = this.cleanupSync();
        if (left.length) process.stderr.write(`bench: could not remove: ${left.join(' ')}\n`);
        process.exit(128 + num);
      });
    }
  }
}

/** Runs `ip -batch` lines inside one namespace. */
const ipBatch = (netns: string, lines: string[]) => run('ip', ['-n', netns, '-batch', '-'], lines.join('\n') + '\n');

/** BACKENDS: every 10.244.0.0/16 address local, one accept-and-close server on :8080. */
export async function makeBackends(scope: Scope): Promise<string> {
  const backends = await scope.netns('backends');
  await ipBatch(backends, [`route add local ${CIDRS.clusterCIDR} dev lo`]);
  const server = `require('net').createServer((s) => s.destroy()).listen(${TARGET_PORT}, '0.0.0.0', () => console.log('ready'))`;
  const child = spawn('nsenter', [`--net=/run/netns/${backends}`, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV });
  scope.children.add(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('ready')) resolve(); });
    child.once('exit', (code) => reject(new Error(`backend server exited ${code}`)));
  });
  return backends;
}

export interface Topology { client: string; node: string }

/** CLIENT and NODE for one proxy and size, NODE's uplink being link `k` of BACKENDS. */
export async function makeTopology(scope: Scope, label: string, k: number, backends: string): Promise<Topology> {
  const client = await scope.netns(`${label}-c`);
  const node = await scope.netns(`${label}-n`);
  const up = uplink(k);
  await ipBatch(node, [
    `link add eth0 type veth peer name eth0 netns ${client}`,
    `link add up0 type veth peer name n${k} netns ${backends}`,
    `addr add ${CLIENT_NET.node}/24 dev eth0`, `addr add ${up.node}/24 dev up0`,
    'link set eth0 up', 'link set up0 up',
    `route add ${CIDRS.clusterCIDR} via ${up.backends}`,
  ]);
  await ipBatch(client, [`addr add ${CLIENT_NET.client}/24 dev eth0`, 'link set eth0 up', `route add ${CIDRS.serviceCIDR} via ${CLIENT_NET.node}`]);
  await ipBatch(backends, [`addr add ${up.backends}/24 dev n${k}`, `link set n${k} up`]);
  // Inside NODE only: the root namespace's sysctls are never touched.
  await run('ip', ['netns', 'exec', node, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  return { client, node };
}

// Sequential connects, each timed from connect() to the 'connect' event (the SYN-ACK), then destroyed.
// `warm` untimed connects first: JIT, neighbour entries.
const CLIENT_JS = `
const net = require('net');
const [host, count, warm] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const one = () => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const s = net.connect({ host, port: ${SERVICE_PORT} });
  s.setTimeout(3000, () => { s.destroy(); reject(new Error('connect to ' + host + ' timed out')); });
  s.once('error', reject);
  s.once('connect', () => { const us = Number(process.hrtime.bigint() - t0) / 1e3; s.destroy(); resolve(us); });
});
(async () => {
  for (let i = 0; i < warm; i++) await one();
  const us = [];
  for (let i = 0; i < count; i++) us.push(await one());
  const s = [...us].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)];
  console.log(JSON.stringify({ p50: q(50), p99: q(99), us }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

export interface ConnectRun { p50: number; p99: number; us: number[] }

/** One client process in `clientNs`: `count` timed connects to host:80. */
export function connectLatency(scope: Scope, clientNs: string, host: string, count: number, warm = 10): Promise<ConnectRun> {
  const child = spawn('nsenter', [`--net=/run/netns/${clientNs}`, process.execPath, '-e', CLIENT_JS, host, String(count), String(warm)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV });
  scope.children.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      scope.children.delete(child);
      if (code !== 0) reject(new Error(`connect client in ${clientNs} to ${host} exited ${code}: ${Buffer.concat(err).toString().trim()}`));
      else resolve(JSON.parse(Buffer.concat(out).toString()) as ConnectRun);
    });
  });
}
