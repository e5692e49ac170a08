// Label and field selectors as the API parses them (?labelSelector=, ?fieldSelector=): pure parse and
// match, so list and watch filter alike. Label syntax is apimachinery's: a=b, a==b, a!=b, a in (x,y),
// a notin (x), a, !a; requirements joined by commas. Fields: only those each kind indexes.
import type { KubeObject } from '../api/types.js';

export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export type FieldRequirement = { field: string; op: '=' | '!='; value: string };

export class SelectorError extends Error {}

/** Splits on the commas outside parentheses: "a in (x,y),b" is two requirements. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0, cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

export function parseLabelSelector(text: string | null | undefined): LabelRequirement[] {
  if (!text) return [];
  return splitTop(text).map((part) => {
    let m = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(part);
    if (m) return m[2] === '!=' ? { key: m[1], op: 'notin', values: [m[3]] } : { key: m[1], op: 'in', values: [m[3]] };
    m = /^([A-Za-z0-9._/-]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (m) return { key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()) };
    m = /^(!?)\s*([A-Za-z0-9._/-]+)$/.exec(part);
    if (m) return { key: m[2], op: m[1] ? 'notexists' : 'exists' };
    throw new SelectorError(`unable to parse requirement: "${part}": expected key=value, key!=value, key in (a,b), key notin (a), key or !key`);
  });
}

export function matchLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case 'exists': return has;
      case 'notexists': return !has;
      case 'in': return has && r.values.includes(l[r.key]);
      case 'notin': return !has || !r.values.includes(l[r.key]);
    }
  });
}

/** Fields each kind may be selected on (the API server's field label conversions, the ones clients use). */
const FIELDS: Record<string, (o: KubeObject) => string> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace ?? '',
};
const POD_FIELDS: Record<string, (o: KubeObject) => string> = {
  'spec.nodeName': (o) => (o.kind === 'Pod' ? o.spec.nodeName ?? '' : ''),
  'status.phase': (o) => (o.kind === 'Pod' ? o.status?.phase ?? '' : ''),
  'spec.hostNetwork': (o) => (o.kind === 'Pod' ? String(o.spec.hostNetwork ?? false) : ''),
};

export function parseFieldSelector(text: string | null | undefined, kind: string, resource: string): FieldRequirement[] {
  if (!text) return [];
  return splitTop(text).map((part) => {
    const m = /^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`invalid selector: '${text}'; can't understand '${part}'`);
    const field = m[1];
    if (!(field in FIELDS) && !(kind === 'Pod' && field in POD_FIELDS)) {
      throw new SelectorError(`"${field}" is not a known field selector: only "${Object.keys(kind === 'Pod' ? { ...FIELDS, ...POD_FIELDS } : FIELDS).join('", "')}" for ${resource}`);
    }
    return { field, op: m[2] === '!=' ? '!=' : '=', value: m[3] };
  });
}

export function matchFields(reqs: FieldRequirement[], obj: KubeObject): boolean {
  return reqs.every((r) => {
    const v = (FIELDS[r.field] ?? POD_FIELDS[r.field])(obj);
    return r.op === '=' ? v === r.value : v !== r.value;
  });
}

export interface Selector { labels: LabelRequirement[]; fields: FieldRequirement[] }

export const matches = (s: Selector, obj: KubeObject): boolean => matchLabels(s.labels, obj.metadata.labels) && matchFields(s.fields, obj);
