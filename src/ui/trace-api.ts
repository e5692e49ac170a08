// `POST /api/trace` of `flatnet ui`: checks the page's request against the lab's picture, runs one
// trace at a time (a trace arms rules on every node: two at once would only confuse each other), and
// answers with the trace's JSON report.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UiModel } from './model.js';

export type TraceProto = 'tcp' | 'udp' | 'icmp';
export interface UiTraceRequest { from: string; to: string; port?: number; proto: TraceProto }

/** Runs `flatnet trace FROM TO[:PORT[/PROTO]]` and returns its report; throws TraceInputError for an end it cannot use. */
export type TraceRunner = (from: string, to: string) => Promise<unknown>;

/** A request the page may not make: the field and the value it gave. */
export class TraceInputError extends Error {
  constructor(readonly field: string, readonly value: unknown, why: string) {
    super(`${field} ${JSON.stringify(value)}: ${why}`);
  }
}

/** What may start a trace (a pod on the pod network, a node, the external host), by the model's names. */
function startsIn(m: UiModel): Set<string> {
  return new Set([...m.pods.filter((p) => !p.hostNetwork && p.ips.length).map((p) => p.id), ...m.nodes.map((n) => `node/${n.name}`), 'external']);
}

/** What a trace may go to: the same, any Service with a ClusterIP, or an IPv4 address. */
function endsIn(m: UiModel): Set<string> {
  return new Set([...startsIn(m), ...m.services.filter((s) => s.clusterIP && s.clusterIP !== 'None').map((s) => `svc/${s.id}`)]);
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The request's body checked against the model; throws TraceInputError naming the first bad field. */
export function checkTraceRequest(body: unknown, m: UiModel): UiTraceRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TraceInputError('body', body, 'expected a JSON object {from, to, port, proto}');
  const b = body as Record<string, unknown>;
  if (typeof b.from !== 'string' || !startsIn(m).has(b.from)) throw new TraceInputError('from', b.from, 'expected a pod (NS/NAME) with an IP, node/NAME or external of this lab');
  const ip = typeof b.to === 'string' ? IPV4.exec(b.to) : null;
  const validIP = !!ip && ip.slice(1).every((o) => Number(o) <= 255);
  if (typeof b.to !== 'string' || !(endsIn(m).has(b.to) || validIP)) throw new TraceInputError('to', b.to, 'expected a pod (NS/NAME), node/NAME, svc/NS/NAME, external or an IPv4 address of this lab');
  if (b.from === b.to) throw new TraceInputError('to', b.to, 'is the same as from');
  const proto = b.proto ?? 'tcp';
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'icmp') throw new TraceInputError('proto', proto, 'expected tcp, udp or icmp');
  const port = b.port === undefined || b.port === null || b.port === '' ? undefined : b.port;
  if (port !== undefined) {
    if (proto === 'icmp') throw new TraceInputError('port', port, 'an ICMP echo has no port');
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new TraceInputError('port', port, 'expected an integer 1-65535');
  }
  return { from: b.from, to: b.to, proto, ...(port !== undefined ? { port: port as number } : {}) };
}

/** The trace's TO argument: "TO[:PORT]/PROTO". */
export const traceTarget = (r: UiTraceRequest): string => `${r.to}${r.port !== undefined ? `:${r.port}` : ''}/${r.proto}`;

const LIMIT = 16 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > LIMIT) { reject(new TraceInputError('body', `${text.length}+ characters`, `larger than ${LIMIT}`)); req.destroy(); }
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

const reply = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** The handler of POST /api/trace: 400 for a bad request, 409 while another trace runs, 200 with the report. */
export function traceHandler(run: TraceRunner, model: () => UiModel | undefined) {
  let running = false;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (running) { reply(res, 409, { error: 'a trace is already running: try again when it ends' }); return; }
    running = true;
    try {
      const m = model();
      if (!m) { reply(res, 503, { error: 'the lab has not been read yet' }); return; }
      let r: UiTraceRequest;
      try {
        const text = await readBody(req);
        let body: unknown;
        try { body = JSON.parse(text); } catch { throw new TraceInputError('body', text.slice(0, 80), 'is not JSON'); }
        r = checkTraceRequest(body, m);
      } catch (err) {
        if (err instanceof TraceInputError) { reply(res, 400, { error: err.message, field: err.field, value: err.value }); return; }
        throw err;
      }
      try {
        reply(res, 200, await run(r.from, traceTarget(r)));
      } catch (err) {
        if (err instanceof TraceInputError) reply(res, 400, { error: err.message, field: err.field, value: err.value });
        else reply(res, 500, { error: (err as Error).message });
      }
    } finally { running = false; }
  };
}
