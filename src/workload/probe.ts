// `flatnet probe`'s client side, what `flatnet serve` answers and how an answer is read: one
// connection or datagram, the server's first line, timed from the connect. Used by the probe command
// and by the probe workers of `flatnet check` (probe-worker.ts).
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';

export interface ServeAnswer { pod: string; client: string; server: string; protocol: 'tcp' | 'udp' }

/** IPv4 clients of a dual-stack socket show as ::ffff:a.b.c.d; the check compares plain addresses. */
export const plainAddress = (a: string | undefined): string => (a ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');

export interface ProbeTarget { host: string; port: number; protocol: 'tcp' | 'udp' }
export interface ProbeAnswer { ok: boolean; answer?: ServeAnswer; error?: string; ms: number }

/**
 * A timeout that yields to answers already received: a process starved of CPU wakes with its timers due
 * and its sockets ready at once, and timers run first in Node's loop. The verdict waits a few more
 * turns of the loop without blocking (a pending connect completes in one, its data is read in the next),
 * so an answer that came in time wins.
 */
function timeoutAfter(ms: number, fire: () => void): NodeJS.Timeout {
  const later = (turns: number) => (turns === 0 ? fire() : setImmediate(() => later(turns - 1)));
  return setTimeout(() => later(3), ms);
}

/** One connection (or datagram, retried within the timeout) and the server's first answer, timed from the connect. */
export function probe(t: ProbeTarget, timeoutMs: number): Promise<ProbeAnswer> {
  const t0 = performance.now();
  const done = (r: Omit<ProbeAnswer, 'ms'>): ProbeAnswer => ({ ...r, ms: Math.round((performance.now() - t0) * 10) / 10 });
  const parse = (line: string): Omit<ProbeAnswer, 'ms'> => {
    try { return { ok: true, answer: JSON.parse(line) as ServeAnswer }; } catch { return { ok: false, error: `unexpected answer ${JSON.stringify(line.slice(0, 80))}` }; }
  };
  return new Promise((resolveOnce) => {
    let settled = false;
    const resolve = (r: ProbeAnswer) => { if (!settled) { settled = true; resolveOnce(r); } };
    if (t.protocol === 'tcp') {
      const sock = connect({ host: t.host, port: t.port });
      let buf = '';
      const timer = timeoutAfter(timeoutMs, () => { if (!settled) { sock.destroy(); resolve(done({ ok: false, error: `timeout after ${timeoutMs} ms` })); } });
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        sock.destroy();
        resolve(done(parse(buf.slice(0, nl))));
      });
      sock.on('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); resolve(done({ ok: false, error: e.code ?? e.message })); });
      sock.on('close', () => { clearTimeout(timer); resolve(done({ ok: false, error: 'closed without an answer' })); });
      return;
    }
    const sock = createSocket(t.host.includes(':') ? 'udp6' : 'udp4');
    let retry: NodeJS.Timeout | undefined;
    const finish = (r: Omit<ProbeAnswer, 'ms'>) => {
      if (settled) return;
      clearTimeout(timer); clearInterval(retry); sock.close(); resolve(done(r));
    };
    const timer = timeoutAfter(timeoutMs, () => finish({ ok: false, error: `timeout after ${timeoutMs} ms` }));
    sock.on('message', (msg) => finish(parse(msg.toString('utf8').trim())));
    // ICMP port unreachable surfaces as ECONNREFUSED only on a connected socket.
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
    sock.connect(t.port, t.host, () => {
      const send = () => sock.send('probe\n');
      send();
      retry = setInterval(send, 250); // a datagram may be lost; ask again
    });
  });
}

