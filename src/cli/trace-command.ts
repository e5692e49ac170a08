// `flatnet trace FROM TO[:PORT[/PROTO]] [-n NS] [-o json]`: argument parsing and output only; the trace
// itself is src/trace/run.ts. Exit 0 when the packet went where flatnet expected (delivered or dropped
// as policy says), 1 when the trace disagrees with the rendered state.
import { UsageError } from './usage.js';
import type { Values } from './main.js';

export const TRACE_USAGE = 'trace FROM TO[:PORT[/tcp|udp|icmp]] [-o json]   FROM: NS/POD, node/NAME or external; TO: NS/POD, svc/NS/NAME, node/NAME (a NodePort), external or an IP';

export async function traceCommand(rest: string[], v: Values): Promise<number> {
  if (rest.length !== 2) throw new UsageError(`trace: expected "${TRACE_USAGE}"`);
  if (v.output !== undefined && v.output !== 'json') throw new UsageError(`-o "${v.output}": expected json`);
  const { labOf } = await import('./cluster-commands.js');
  const { runTrace, TraceArgError } = await import('../trace/run.js');
  const { formatReport } = await import('../trace/report.js');
  const lab = labOf(v);
  lab.cluster(); // throws "lab X is not up ... run flatnet lab up"
  let report;
  try { report = await runTrace(lab, { from: rest[0], to: rest[1], namespace: v.namespace ?? 'default' }); } catch (err) {
    if (err instanceof TraceArgError) throw new UsageError(`trace: ${err.message}`);
    throw err;
  }
  console.log(v.output === 'json' ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.disagreements.length === 0 ? 0 : 1;
}
