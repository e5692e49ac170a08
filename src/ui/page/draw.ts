// Draws the three networks as one SVG: the router and its segments on top, each node on its segment,
// the node's pods (its pod CIDR) under it, and the Services at the bottom with a line to each endpoint.
import type { UiModel, UiNode, UiPod, UiService } from '../model.js';

const SVG = 'http://www.w3.org/2000/svg';
const COL = 230;
const POD_H = 34;

type Attrs = Record<string, string | number>;

function el(name: string, attrs: Attrs, parent?: Element, text?: string): SVGElement {
  const e = document.createElementNS(SVG, name) as SVGElement;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  parent?.appendChild(e);
  return e;
}

function box(parent: Element, x: number, y: number, w: number, h: number, fill: string, lines: Array<[string, string]>, attrs: Attrs = {}, dashed = false): SVGElement {
  const g = el('g', attrs, parent);
  el('rect', { x, y, width: w, height: h, rx: 5, fill, stroke: '#56607a', 'stroke-width': 1, ...(dashed ? { 'stroke-dasharray': '4 3' } : {}) }, g);
  lines.forEach(([cls, text], i) => el('text', { x: x + 8, y: y + 15 + i * 14, class: cls }, g, text));
  return g;
}

/** Nodes ordered by segment so that each segment's nodes sit side by side under its line. */
function columns(m: UiModel): Array<UiNode | undefined> {
  const order = m.segments.map((s) => s.name);
  const nodes = [...m.nodes].sort((a, b) => (order.indexOf(a.segment ?? '') - order.indexOf(b.segment ?? '')) || a.name.localeCompare(b.name));
  const cols: Array<UiNode | undefined> = nodes;
  // Pods not (yet) on a node get a column of their own.
  return m.pods.some((p) => !p.node || !m.nodes.some((n) => n.name === p.node)) ? [...cols, undefined] : cols;
}

export function draw(m: UiModel, selected: string | undefined): SVGSVGElement {
  const cols = columns(m);
  const width = Math.max(760, cols.length * COL + 40);
  const podsOf = (n: UiNode | undefined): UiPod[] => m.pods.filter((p) => (n ? p.node === n.name : !p.node || !m.nodes.some((x) => x.name === p.node)));
  const maxPods = Math.max(1, ...cols.map((n) => podsOf(n).length));
  const podTop = 250;
  const svcTop = podTop + maxPods * (POD_H + 6) + 70;
  const svcRows = Math.ceil(m.services.length / Math.max(1, Math.floor((width - 40) / COL)));
  const height = svcTop + Math.max(1, svcRows) * 80 + 20;
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, id: 'network' }) as SVGSVGElement;
  const lines = el('g', { id: 'links' }, svg);
  const colX = (i: number) => 20 + i * COL;
  const pick = (kind: string, id: string): Attrs => ({ 'data-kind': kind, 'data-id': id, ...(selected === `${kind}:${id}` ? { class: 'selected' } : {}) });

  // Node network: the router, its segments and the external host.
  el('text', { x: 20, y: 18, class: 'caption' }, svg, 'node network');
  const routerX = width / 2 - 90;
  box(svg, routerX, 28, 180, 40, '#e7f5ff', [['title', 'router'], ['mono', m.router]], pick('router', m.router));
  if (m.external) {
    box(svg, routerX + 220, 28, 160, 40, '#f1f3f5', [['title', 'external host'], ['mono', m.external.ip]], pick('external', m.external.ip));
    el('line', { x1: routerX + 180, y1: 48, x2: routerX + 220, y2: 48, stroke: '#56607a' }, lines);
  }
  // Nodes are ordered by segment, so each segment's line spans its own columns, all at one height.
  m.segments.forEach((s, si) => {
    const idx = cols.map((n, i) => (n?.segment === s.name ? i : -1)).filter((i) => i >= 0);
    const y = 125;
    const x1 = idx.length ? colX(idx[0]) : colX(cols.length) + si * COL;
    const x2 = idx.length ? colX(idx[idx.length - 1]) + COL - 30 : x1 + COL - 30;
    el('line', { x1, y1: y, x2, y2: y, stroke: '#1971c2', 'stroke-width': 3 }, lines);
    const fromX = routerX + 30 + (120 * (si + 1)) / (m.segments.length + 1);
    el('line', { x1: fromX, y1: 68, x2: (x1 + x2) / 2, y2: y, stroke: '#1971c2' }, lines);
    const label = el('g', { 'data-kind': 'segment', 'data-id': s.name }, svg);
    el('text', { x: x1, y: y - 18, class: 'mono' }, label, `segment ${s.name} ${s.subnet}`);
    el('text', { x: x1, y: y - 5, class: 'mono' }, label, `router ${s.routerAddress}`);
    for (const i of idx) el('line', { x1: colX(i) + 100, y1: y, x2: colX(i) + 100, y2: 150, stroke: '#1971c2' }, lines);
  });

  // Pod network: each node's pod CIDR and its pods.
  el('text', { x: 20, y: podTop - 20, class: 'caption' }, svg, 'pod network');
  const podAt = new Map<string, { x: number; y: number }>();
  cols.forEach((n, i) => {
    const x = colX(i);
    if (n) {
      box(svg, x, 150, COL - 30, 58, n.alive ? '#ebfbee' : '#f1f3f5',
        [['title', `${n.name}${n.alive ? '' : ' (not alive)'}`], ['mono', n.ip ?? '<no address>'], ['mono', `pods ${n.podCIDRs.join(', ') || '<no CIDR>'}`]], pick('node', n.name));
    } else {
      el('text', { x, y: 190, class: 'title' }, svg, 'not on a node');
    }
    podsOf(n).forEach((p, j) => {
      const y = podTop + j * (POD_H + 6);
      podAt.set(p.id, { x: x + 10, y });
      el('line', { x1: x + 5, y1: 208, x2: x + 5, y2: y + POD_H / 2, stroke: '#adb5bd' }, lines);
      el('line', { x1: x + 5, y1: y + POD_H / 2, x2: x + 10, y2: y + POD_H / 2, stroke: '#adb5bd' }, lines);
      const fill = p.phase === 'Running' ? '#fff9db' : '#f8f9fa';
      box(svg, x + 10, y, COL - 40, POD_H, fill, [['', `${p.namespace}/${p.name}`], ['mono', `${p.ips.join(' ') || p.phase}${p.hostNetwork ? ' (host network)' : ''}`]], pick('pod', p.id), p.hostNetwork);
    });
  });

  // Service network: ClusterIP and NodePort to the endpoints.
  el('text', { x: 20, y: svcTop - 20, class: 'caption' }, svg, 'service network');
  const perRow = Math.max(1, Math.floor((width - 40) / COL));
  m.services.forEach((s, i) => drawService(svg, lines, s, colX(i % perRow), svcTop + Math.floor(i / perRow) * 80, podAt, pick('service', s.id)));
  return svg;
}

function drawService(svg: Element, lines: Element, s: UiService, x: number, y: number, podAt: Map<string, { x: number; y: number }>, attrs: Attrs): void {
  const ports = s.ports.map((p) => `${p.port}/${p.protocol}${p.nodePort ? ` node:${p.nodePort}` : ''}`).join(' ');
  box(svg, x, y, COL - 30, 50, '#f3f0ff', [['title', `${s.namespace}/${s.name}`], ['mono', `${s.type} ${s.clusterIP ?? ''}`], ['mono', ports]], attrs);
  for (const e of s.endpoints) {
    const at = e.pod ? podAt.get(e.pod) : undefined;
    if (!at) continue;
    el('line', { x1: x + (COL - 30) / 2, y1: y, x2: at.x + (COL - 40) / 2, y2: at.y + POD_H, stroke: e.ready ? '#7048e8' : '#ced4da', 'stroke-width': 1.2, 'stroke-dasharray': e.ready ? '' : '3 3' }, lines);
  }
}
