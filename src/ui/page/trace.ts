// The page's trace panel: two selects (FROM: pods, nodes, the external host; TO: the same and the
// Services), port and protocol, a Trace button that POSTs to /api/trace, and the report as a list of
// hops with the rules that matched, the expectation, and the disagreements in red.
import type { UiModel } from '../model.js';
import type { TraceReport } from '../../trace/report.js';

export function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const $ = (id: string): HTMLElement => document.getElementById(id)!;

function ends(m: UiModel, withServices: boolean): string[] {
  const pods = m.pods.filter((p) => !p.hostNetwork && p.ips.length).map((p) => p.id);
  const svcs = withServices ? m.services.filter((s) => s.clusterIP && s.clusterIP !== 'None').map((s) => `svc/${s.id}`) : [];
  return [...pods, ...svcs, ...m.nodes.map((n) => `node/${n.name}`), ...(m.external ? ['external'] : [])];
}

/** Fills a select with the current ends, keeping what was chosen while it still exists. */
function fill(select: HTMLSelectElement, values: string[]): void {
  const chosen = select.value;
  select.innerHTML = values.map((v) => `<option value="${escape(v)}">${escape(v)}</option>`).join('');
  if (values.includes(chosen)) select.value = chosen;
}

export function updateTraceForm(m: UiModel): void {
  fill($('trace-from') as HTMLSelectElement, ends(m, false));
  fill($('trace-to') as HTMLSelectElement, ends(m, true));
}

/** A click on a pod picks FROM; a shift- or alt-click picks TO. */
export function pickEnd(kind: string, id: string, asTarget: boolean): void {
  const value = kind === 'pod' ? id : kind === 'node' ? `node/${id}` : kind === 'service' ? `svc/${id}` : kind === 'external' ? 'external' : '';
  const select = $(asTarget ? 'trace-to' : 'trace-from') as HTMLSelectElement;
  if (value && [...select.options].some((o) => o.value === value)) select.value = value;
}

function hopRow(h: TraceReport['hops'][number], i: number): string {
  const where = h.table ? `<code>${escape(`${h.table} ${h.chain ?? ''}`)}</code>${h.verdict ? ` → <b>${escape(h.verdict)}</b>` : ''}` : '';
  return `<li class="trace-row${h.kind === 'drop' ? ' denied' : ''}" data-hop="${i + 1}" data-node="${escape(h.node)}"><b>${escape(h.node)}</b> ${escape(h.kind)}: ${escape(h.text)}`
    + `${where ? `<br>${where}` : ''}${h.object ? `<br><span class="object">${escape(h.object)}</span>` : ''}</li>`;
}

export function reportHtml(r: TraceReport): string {
  const q = r.request;
  const head = `${escape(q.from.label)} (${escape(q.from.address)}) → ${escape(q.to.label)} (${escape(q.to.address)}${q.protocol === 'icmp' ? '' : `:${q.port}`}) ${escape(q.protocol)}`;
  const result = `<p id="trace-outcome" class="${r.outcome === 'delivered' ? '' : 'denied'}"><b>${escape(r.outcome)}</b>${r.droppedBy ? ` on ${escape(r.droppedBy.node)}` : ''}`
    + `${r.service ? `; Service ${escape(r.service.ref)} → endpoint ${escape(r.service.endpointPod ?? '')} ${escape(r.service.endpoint)}` : ''}; the sender saw: ${escape(r.probe.detail)}</p>`;
  const disagree = r.disagreements.length
    ? `<ul id="trace-disagreements">${r.disagreements.map((d) => `<li class="disagree">DISAGREES: ${escape(d)}</li>`).join('')}</ul>`
    : '<p class="muted">agrees with the rendered state</p>';
  return `<p>${head}, tag ${r.request.tag}</p>${result}<ol id="trace-hops">${r.hops.map(hopRow).join('')}</ol>`
    + `<p>Expected:</p><ul>${r.expected.map((e) => `<li>${escape(e)}</li>`).join('')}</ul>${disagree}`;
}

/** POSTs the form; resolves with the report, or shows the server's refusal and resolves undefined. */
export async function runTrace(): Promise<TraceReport | undefined> {
  const port = ($('trace-port') as HTMLInputElement).value.trim();
  const proto = ($('trace-proto') as HTMLSelectElement).value;
  const body = {
    from: ($('trace-from') as HTMLSelectElement).value, to: ($('trace-to') as HTMLSelectElement).value, proto,
    ...(port && proto !== 'icmp' ? { port: /^\d+$/.test(port) ? Number(port) : port } : {}),
  };
  const button = $('trace-run') as HTMLButtonElement;
  button.disabled = true;
  $('trace-result').innerHTML = `<p class="muted">tracing ${escape(body.from)} → ${escape(body.to)}…</p>`;
  try {
    const res = await fetch('/api/trace', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = await res.json() as TraceReport | { error: string };
    if (!res.ok || 'error' in json) {
      $('trace-result').innerHTML = `<p class="denied" id="trace-error">${res.status}: ${escape((json as { error: string }).error)}</p>`;
      return undefined;
    }
    $('trace-result').innerHTML = reportHtml(json);
    return json;
  } catch (err) {
    $('trace-result').innerHTML = `<p class="denied" id="trace-error">${escape((err as Error).message)}</p>`;
    return undefined;
  } finally { button.disabled = false; }
}
