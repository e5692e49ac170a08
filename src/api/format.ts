// What `flatnet get` prints, in kubectl's shapes: the same table columns (and -o wide ones), the same
// AGE spelling, and -o json/yaml as kubectl gives them, so habits and scripts carry over.
import { stringify } from 'yaml';
import { podCIDRsOf, type Deployment, type EndpointSlice, type Kind, type KubeObject, type LabelSelector, type Namespace, type NetworkPolicy, type Node, type Pod, type Service } from './types.js';

export interface TableOptions {
  wide: boolean;
  allNamespaces: boolean;
  /** The time AGE counts to (ms since the epoch); now by default. */
  now?: number;
}

const NONE = '<none>';

/** kubectl's HumanDuration: "45s", "3m10s", "3h", "2d5h", "2y". */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

function age(o: KubeObject, now: number): string {
  const t = o.metadata.creationTimestamp ? Date.parse(o.metadata.creationTimestamp) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

/**
 * A selector as kubectl prints it (metav1.FormatLabelSelector): one term per label and expression,
 * sorted by key, the values of In/NotIn sorted: "app=web,tier in (a,b)"; "<none>" when it selects everything.
 */
export function selectorText(sel: LabelSelector): string {
  const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const terms: Array<[string, string]> = [
    ...Object.entries(sel.matchLabels ?? {}).map(([k, v]): [string, string] => [k, `${k}=${v}`]),
    ...(sel.matchExpressions ?? []).map((e): [string, string] => [e.key, e.operator === 'Exists' ? e.key : e.operator === 'DoesNotExist' ? `!${e.key}`
      : `${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${[...(e.values ?? [])].sort(byKey).join(',')})`]),
  ];
  return terms.sort((a, b) => byKey(a[0], b[0])).map(([, t]) => t).join(',') || NONE;
}

export interface Columns { headers: string[]; row(o: KubeObject): string[] }

/** The table of a kind: headers and cells, with -o wide's extra columns last. */
export function columns(kind: Kind, wide: boolean, now: number): Columns {
  switch (kind) {
    case 'Node': return {
      headers: ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', ...(wide ? ['INTERNAL-IP', 'EXTERNAL-IP', 'POD-CIDR'] : [])],
      row: (o) => {
        const n = o as Node;
        const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        const address = (type: string) => n.status?.addresses?.find((a) => a.type === type)?.address ?? NONE;
        const cidrs = podCIDRsOf(n).join(',') || NONE;
        return [n.metadata.name, ready ? 'Ready' : 'NotReady', NONE, age(n, now), 'flatnet',
          ...(wide ? [address('InternalIP'), address('ExternalIP'), cidrs] : [])];
      },
    };
    case 'Pod': return {
      headers: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(wide ? ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'] : [])],
      row: (o) => {
        const p = o as Pod;
        const total = p.spec.containers.length;
        const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? total : 0;
        return [p.metadata.name, `${ready}/${total}`, p.metadata.deletionTimestamp ? 'Terminating' : p.status?.reason ?? p.status?.phase ?? 'Pending', '0', age(p, now),
          ...(wide ? [p.status?.podIP ?? NONE, p.spec.nodeName ?? NONE, NONE, NONE] : [])];
      },
    };
    case 'Namespace': return {
      headers: ['NAME', 'STATUS', 'AGE'],
      row: (o) => [o.metadata.name, (o as Namespace).status?.phase ?? 'Active', age(o, now)],
    };
    case 'Deployment': return {
      headers: ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE', ...(wide ? ['CONTAINERS', 'IMAGES', 'SELECTOR'] : [])],
      row: (o) => {
        const d = o as Deployment;
        const ready = d.status?.readyReplicas ?? 0;
        const containers = d.spec.template.spec.containers;
        return [d.metadata.name, `${ready}/${d.spec.replicas ?? 1}`, String(d.status?.replicas ?? 0), String(ready), age(d, now),
          ...(wide ? [containers.map((c) => c.name).join(','), containers.map((c) => c.image ?? NONE).join(','),
            Object.entries(d.spec.selector.matchLabels).map(([k, v]) => `${k}=${v}`).join(',')] : [])];
      },
    };
    case 'Service': return {
      headers: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE', ...(wide ? ['SELECTOR'] : [])],
      row: (o) => {
        const s = o as Service;
        const ports = s.spec.ports.map((p) => `${p.port}${p.nodePort !== undefined ? `:${p.nodePort}` : ''}/${p.protocol}`).join(',') || NONE;
        return [s.metadata.name, s.spec.type, s.spec.clusterIP ?? NONE, NONE, ports, age(s, now),
          ...(wide ? [Object.entries(s.spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || NONE] : [])];
      },
    };
    case 'NetworkPolicy': return {
      headers: ['NAME', 'POD-SELECTOR', 'AGE'],
      row: (o) => [o.metadata.name, selectorText((o as NetworkPolicy).spec.podSelector), age(o, now)],
    };
    case 'EndpointSlice': return {
      headers: ['NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS', 'AGE'],
      row: (o) => {
        const e = o as EndpointSlice;
        const addresses = e.endpoints.flatMap((ep) => ep.addresses);
        // kubectl shows three addresses and counts the rest.
        const shown = addresses.slice(0, 3).join(',') + (addresses.length > 3 ? ` + ${addresses.length - 3} more...` : '');
        return [e.metadata.name, e.addressType, e.ports.map((p) => String(p.port)).join(',') || '<unset>', shown || '<unset>', age(e, now)];
      },
    };
  }
}

/** Aligns cells as kubectl's tabwriter does: each column as wide as its widest cell + 3, at least 6. */
function align(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(6, ...rows.map((r) => r[i].length + 3)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('')).join('\n');
}

export function formatTable(kind: Kind, objects: KubeObject[], opts: TableOptions): string {
  const cols = columns(kind, opts.wide, opts.now ?? Date.now());
  // Like kubectl: -A adds NAMESPACE for namespaced kinds only.
  const withNamespace = opts.allNamespaces && kind !== 'Node' && kind !== 'Namespace';
  const rows = [withNamespace ? ['NAMESPACE', ...cols.headers] : cols.headers];
  for (const o of objects) rows.push(withNamespace ? [o.metadata.namespace ?? '', ...cols.row(o)] : cols.row(o));
  return align(rows);
}

export interface DocumentOptions {
  /** A kubectl List of all objects; otherwise the one object alone. */
  asList: boolean;
}

/** The list (or single object) kubectl prints for -o json/yaml. */
function document(objects: KubeObject[], opts: DocumentOptions): unknown {
  if (!opts.asList && objects.length === 1) return objects[0];
  return { apiVersion: 'v1', items: objects, kind: 'List', metadata: { resourceVersion: '' } };
}

export function formatJson(objects: KubeObject[], opts: DocumentOptions): string {
  return JSON.stringify(document(objects, opts), null, 4);
}

export function formatYaml(objects: KubeObject[], opts: DocumentOptions): string {
  // kubectl writes a list's items at the key's indentation ("items:\n- apiVersion: v1").
  return stringify(document(objects, opts), { indentSeq: false });
}
