// The page's script: keeps the latest model from the server's event stream, redraws on each one, and
// shows the details of what was clicked. Bundled for the browser by scripts/build.mjs.
import type { UiModel } from '../model.js';
import type { TraceReport } from '../../trace/report.js';
import { draw } from './draw.js';
import { escape, pickEnd, runTrace, updateTraceForm } from './trace.js';
import { drawTrace } from './trace-draw.js';

let model: UiModel | undefined;
let selected: string | undefined;
let trace: TraceReport | undefined;

const $ = (id: string): HTMLElement => document.getElementById(id)!;

const row = (k: string, v: string): string => `<tr><th>${escape(k)}</th><td>${v}</td></tr>`;

/** What the details panel says about one thing of the picture (`kind:id`). */
function details(m: UiModel, key: string): string {
  const [kind, ...rest] = key.split(':');
  const id = rest.join(':');
  if (kind === 'pod') {
    const p = m.pods.find((x) => x.id === id);
    if (!p) return '<p class="muted">gone</p>';
    const services = m.services.filter((s) => s.endpoints.some((e) => e.pod === id)).map((s) => escape(s.id));
    const denied = m.denied.filter((d) => d.from === id || d.to === id)
      .map((d) => `<li class="denied">${escape(d.from)} → ${escape(d.to)}:${d.port}/${d.protocol} (isolated by ${escape(d.isolatedBy.join(', '))})</li>`);
    return `<table id="pod-details">${row('pod', `<b>${escape(p.id)}</b>`)}${row('node', escape(p.node ?? '<none>'))}${row('IPs', `<code>${escape(p.ips.join(', ') || '<none>')}</code>`)}`
      + `${row('phase', escape(p.phase))}${row('network', p.hostNetwork ? 'host network' : 'pod network')}`
      + `${row('labels', Object.entries(p.labels).map(([k, v]) => `<code>${escape(k)}=${escape(v)}</code>`).join('<br>') || '<none>')}`
      + `${row('containers', p.containers.map((c) => `${escape(c.name)} ${escape(c.ports.join(', '))}`).join('<br>'))}`
      + `${row('endpoint of', services.join('<br>') || '<none>')}</table>`
      + (denied.length ? `<p>Denied by policy:</p><ul>${denied.join('')}</ul>` : '');
  }
  if (kind === 'node') {
    const n = m.nodes.find((x) => x.name === id);
    if (!n) return '<p class="muted">gone</p>';
    const pods = m.pods.filter((p) => p.node === id).map((p) => `${escape(p.id)} <code>${escape(p.ips.join(' '))}</code>`);
    return `<table>${row('node', `<b>${escape(n.name)}</b>`)}${row('address', `<code>${escape(n.ip ?? '')}</code>`)}${row('segment', escape(n.segment ?? ''))}`
      + `${row('pod CIDR', `<code>${escape(n.podCIDRs.join(', '))}</code>`)}${row('agent', n.alive ? 'alive' : 'no heartbeat')}${row('pods', pods.join('<br>') || '<none>')}</table>`;
  }
  if (kind === 'service') {
    const s = m.services.find((x) => x.id === id);
    if (!s) return '<p class="muted">gone</p>';
    const ports = s.ports.map((p) => `${p.port}/${p.protocol} → ${escape(p.targetPort)}${p.nodePort ? `, NodePort ${p.nodePort}` : ''}`);
    const eps = s.endpoints.map((e) => `<code>${escape(e.ip)}</code> ${escape(e.pod ?? '')}${e.ready ? '' : ' (not ready)'}`);
    return `<table>${row('Service', `<b>${escape(s.id)}</b>`)}${row('type', escape(s.type))}${row('ClusterIP', `<code>${escape(s.clusterIP ?? '')}</code>`)}`
      + `${row('ports', ports.join('<br>'))}${row('endpoints', eps.join('<br>') || '<none>')}</table>`;
  }
  return `<p>${escape(kind)} <code>${escape(id)}</code></p>`;
}

function policies(m: UiModel): string {
  if (m.policies.length === 0) return '<h2>Policies</h2><p class="muted">No NetworkPolicy: every pod may talk to every pod.</p>';
  const list = m.policies.map((p) => `<li data-policy="${escape(p.id)}"><b>${escape(p.id)}</b> selects ${escape(p.podSelector)} · ${escape(p.policyTypes.join('+'))} · ${p.ingressRules} ingress / ${p.egressRules} egress rules</li>`);
  const denied = m.denied.map((d) => `<li class="denied">${escape(d.from)} ✗ ${escape(d.to)}:${d.port}/${d.protocol}</li>`);
  return `<h2>Policies</h2><ul>${list.join('')}</ul><h2>Who may not talk to whom</h2>`
    + (denied.length ? `<ul id="denied">${denied.join('')}</ul>` : '<p class="muted">Every pod pair is allowed.</p>');
}

function render(): void {
  if (!model) return;
  $('lab').textContent = `lab ${model.lab} · backend ${model.backend} · cluster CIDR ${model.clusterCIDR}`;
  $('status').textContent = `live · revision ${model.revision} · ${model.nodes.length} nodes, ${model.pods.length} pods, ${model.services.length} Services`;
  const svg = draw(model, selected);
  // The last trace stays drawn over every new picture until the next one.
  if (trace) drawTrace(svg, trace);
  $('picture').replaceChildren(svg);
  updateTraceForm(model);
  $('policies').innerHTML = policies(model);
  if (selected) $('details').innerHTML = `<h2>Details</h2>${details(model, selected)}`;
}

$('picture').addEventListener('click', (ev) => {
  const hit = (ev.target as Element).closest('[data-kind]');
  if (!hit) return;
  selected = `${hit.getAttribute('data-kind')}:${hit.getAttribute('data-id')}`;
  pickEnd(hit.getAttribute('data-kind')!, hit.getAttribute('data-id')!, (ev as MouseEvent).shiftKey || (ev as MouseEvent).altKey);
  render();
});

$('trace-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void runTrace().then((r) => { trace = r; render(); });
});

const events = new EventSource('/events');
events.addEventListener('model', (ev) => { model = JSON.parse((ev as MessageEvent<string>).data) as UiModel; render(); });
events.addEventListener('problem', (ev) => { $('status').textContent = `store: ${JSON.parse((ev as MessageEvent<string>).data) as string}`; });
events.onerror = () => { $('status').textContent = 'disconnected: reconnecting…'; };
