// The lab's built-in workload, what agnhost netexec is to Kubernetes' e2e tests: `flatnet serve` answers
// every TCP connection and UDP datagram with its own name and the client address it saw (so NAT on the
// path shows), then echoes TCP lines; `flatnet probe` is its client; `flatnet probe-worker`
// (probe-worker.ts) runs many probes for `flatnet check`.
import { createServer, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { plainAddress, probe, type ServeAnswer } from './probe.js';

export interface PortSpec { port: number; protocol: 'tcp' | 'udp' }

/** "8080", "8080/tcp", "53/udp". */
export function parsePortSpec(text: string): PortSpec {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(text.trim());
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`--port "${text}": expected PORT[/tcp|udp] with PORT 1-65535`);
  return { port, protocol: (m[2]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp' };
}

const hostPort = (ip: string, port: number | undefined) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

function listenTcp(name: string, port: number): Promise<void> {
  const server = createServer((sock: Socket) => {
    const answer: ServeAnswer = {
      pod: name, protocol: 'tcp',
      client: hostPort(plainAddress(sock.remoteAddress), sock.remotePort),
      server: hostPort(plainAddress(sock.localAddress), sock.localPort),
    };
    sock.on('error', () => sock.destroy());
    sock.write(JSON.stringify(answer) + '\n');
    sock.pipe(sock);
  });
  const tryListen = (host: string) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only: false }, () => { server.off('error', reject); resolve(); });
  });
  // Dual-stack when the namespace has IPv6, else IPv4 only.
  return tryListen('::').catch(() => tryListen('0.0.0.0'));
}

function bindUdp(type: 'udp4' | 'udp6', name: string, port: number): Promise<UdpSocket> {
  const sock = createSocket({ type, ipv6Only: type === 'udp6' });
  sock.on('message', (_msg, rinfo) => {
    const local = sock.address();
    const answer: ServeAnswer = { pod: name, protocol: 'udp', client: hostPort(plainAddress(rinfo.address), rinfo.port), server: hostPort(local.address, local.port) };
    sock.send(JSON.stringify(answer) + '\n', rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, type === 'udp4' ? '0.0.0.0' : '::', () => { sock.off('error', reject); resolve(sock); });
  });
}

export async function runServeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { port: { type: 'string', multiple: true }, name: { type: 'string' }, 'delay-shutdown': { type: 'string' }, probes: { type: 'boolean' } } });
  const ports = (values.port ?? []).map(parsePortSpec);
  if (ports.length === 0) throw new Error('serve needs at least one --port PORT[/tcp|udp]');
  const delay = values['delay-shutdown'] ?? '0';
  if (!/^\d+$/.test(delay)) throw new Error(`--delay-shutdown "${delay}": expected whole seconds`);
  const env = process.env;
  const name = values.name ?? (env.POD_NAME ? `${env.POD_NAMESPACE ?? 'default'}/${env.POD_NAME}` : hostname());
  for (const p of ports) {
    if (p.protocol === 'tcp') await listenTcp(name, p.port);
    else {
      await bindUdp('udp4', name, p.port);
      await bindUdp('udp6', name, p.port).catch(() => undefined); // no IPv6 in this namespace
    }
  }
  console.log(`${name}: serving on ${ports.map((p) => `${p.port}/${p.protocol}`).join(', ')}`);
  // `flatnet check` probes from here too (probe-worker.ts): stdin brings probes, stdout takes results.
  if (values.probes) {
    const { answerProbes } = await import('./probe-worker.js');
    answerProbes(process.stdin, (line) => process.stdout.write(`${line}\n`)).catch((e: Error) => console.error(e.message));
  }
  await new Promise<void>((resolve) => { for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve()); });
  // Like agnhost netexec --delay-shutdown: keep answering while a terminating pod drains.
  if (Number(delay) > 0) {
    console.log(`${name}: terminating; serving ${delay} s more`);
    await new Promise((r) => setTimeout(r, Number(delay) * 1000));
  }
  // Open sockets would keep the process alive past the signal: exit outright.
  process.exit(0);
}

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text);
  if (!m) throw new Error(`--timeout "${text}": expected a duration such as 500ms or 2s`);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

/** `flatnet probe HOST:PORT [--protocol tcp|udp] [--timeout 2s]`: exit 0 when the server answered. */
export async function runProbeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { protocol: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' } } });
  const target = positionals[0];
  const m = target ? /^\[?([^\]]+?)\]?:(\d+)$/.exec(target) : null;
  if (!m) throw new Error(`probe needs HOST:PORT (got ${JSON.stringify(target ?? '')})`);
  const protocol = (values.protocol ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') throw new Error(`--protocol "${values.protocol}": expected tcp or udp`);
  const r = await probe({ host: m[1], port: Number(m[2]), protocol }, parseDuration(values.timeout ?? '2s'));
  if (values.json) console.log(JSON.stringify(r));
  else if (r.ok) console.log(`${r.answer!.pod} answered from ${r.answer!.server} in ${r.ms} ms; it saw the client as ${r.answer!.client}`);
  else console.log(`no answer from ${target}/${protocol}: ${r.error}`);
  return r.ok ? 0 : 1;
}
