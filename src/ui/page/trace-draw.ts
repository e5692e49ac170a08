// A trace's hops drawn over the picture: the packet's path (source → each node it crossed → where it
// was delivered) as a thick line behind the boxes, each link between nodes labelled VXLAN or direct, one
// numbered marker per hop above the node it happened on, and a cross where the packet was dropped.
import type { TraceReport } from '../../trace/report.js';
import type { Hop } from '../../trace/hops.js';

const SVG = 'http://www.w3.org/2000/svg';
type Attrs = Record<string, string | number>;
interface Box { x: number; y: number; w: number; h: number }

function el(name: string, attrs: Attrs, parent: Element, text?: string): SVGElement {
  const e = document.createElementNS(SVG, name) as SVGElement;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  parent.appendChild(e);
  return e;
}

/** Where the picture drew one thing, read from its rectangle. */
function boxOf(svg: SVGSVGElement, kind: string, id: string): Box | undefined {
  const r = svg.querySelector(`[data-kind="${kind}"][data-id="${CSS.escape(id)}"] rect`);
  if (!r) return undefined;
  const n = (a: string) => Number(r.getAttribute(a));
  return { x: n('x'), y: n('y'), w: n('width'), h: n('height') };
}

/** A trace end's box: a pod (NS/NAME), node/NAME, svc/NS/NAME or the external host. */
function endBox(svg: SVGSVGElement, label: string): Box | undefined {
  if (label.startsWith('node/')) return boxOf(svg, 'node', label.slice(5));
  if (label.startsWith('svc/')) return boxOf(svg, 'service', label.slice(4));
  if (label === 'external') return svg.querySelector('[data-kind="external"] rect') ? boxOf(svg, 'external', svg.querySelector('[data-kind="external"]')!.getAttribute('data-id')!) : undefined;
  return boxOf(svg, 'pod', label);
}

const center = (b: Box) => ({ x: b.x + b.w / 2, y: b.y + b.h / 2 });

/** The nodes the packet crossed, in order, each once per visit. */
export function nodesCrossed(hops: Hop[]): string[] {
  return hops.map((h) => h.node).filter((n, i, all) => i === 0 || all[i - 1] !== n);
}

/** How the packet left a node for the next: its route hop says VXLAN or direct. */
function linkKind(hops: Hop[], node: string): string {
  const route = hops.find((h) => h.node === node && h.kind === 'route')?.text ?? '';
  return route.includes('VXLAN') ? 'VXLAN' : route.includes('direct') ? 'direct' : 'routed';
}

export function drawTrace(svg: SVGSVGElement, r: TraceReport): void {
  const g = el('g', { id: 'trace', 'pointer-events': 'none' }, svg);
  // The path goes behind the boxes (right after the picture's links), so it never hides a name.
  const path = el('g', { id: 'trace-path', 'pointer-events': 'none' }, svg);
  svg.insertBefore(path, svg.querySelector('#links')?.nextSibling ?? svg.firstChild);
  const nodes = nodesCrossed(r.hops);
  const stops: Array<{ box: Box; label: string; node?: string }> = [];
  const from = endBox(svg, r.request.from.label);
  if (from && !r.request.from.label.startsWith('node/')) stops.push({ box: from, label: r.request.from.label });
  for (const n of nodes) { const b = boxOf(svg, 'node', n); if (b) stops.push({ box: b, label: n, node: n }); }
  const toLabel = r.service?.endpointPod ?? r.request.to.label;
  const to = endBox(svg, toLabel);
  if (r.outcome === 'delivered' && to && !toLabel.startsWith('node/')) stops.push({ box: to, label: toLabel });
  for (let i = 1; i < stops.length; i++) {
    const a = center(stops[i - 1].box);
    const b = center(stops[i].box);
    const between = stops[i - 1].node && stops[i].node;
    el('line', { class: `trace-path${between ? ' trace-link' : ''}`, 'data-from': stops[i - 1].label, 'data-to': stops[i].label, x1: a.x, y1: a.y, x2: b.x, y2: b.y }, path);
    if (between) el('text', { class: 'trace-link-label', x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6, 'text-anchor': 'middle' }, g, linkKind(r.hops, stops[i - 1].node!));
  }
  // One numbered marker per hop, in a row above the node box it happened on.
  const perNode = new Map<string, number>();
  r.hops.forEach((h, i) => {
    const b = boxOf(svg, 'node', h.node);
    if (!b) return;
    const k = perNode.get(h.node) ?? 0;
    perNode.set(h.node, k + 1);
    const x = b.x + 10 + (k % 10) * 19;
    const y = b.y - 11 - Math.floor(k / 10) * 19;
    const drop = h.kind === 'drop';
    const m = el('g', { class: `trace-hop${drop ? ' trace-hop-drop' : ''}`, 'data-hop': i + 1, 'data-node': h.node }, g);
    el('circle', { cx: x, cy: y, r: 8 }, m);
    el('text', { x, y: y + 4, 'text-anchor': 'middle' }, m, String(i + 1));
  });
  if (r.droppedBy) {
    const b = boxOf(svg, 'node', r.droppedBy.node);
    if (b) {
      const m = el('g', { class: 'trace-drop', 'data-node': r.droppedBy.node }, g);
      const x = b.x + b.w - 20;
      const y = b.y + 20;
      el('path', { d: `M${x - 9},${y - 9}L${x + 9},${y + 9}M${x + 9},${y - 9}L${x - 9},${y + 9}` }, m);
      el('text', { x, y: y + 26, 'text-anchor': 'middle' }, m, 'DROP');
    }
  }
}
