// The meta.k8s.io/v1 Table kubectl asks for (Accept: application/json;as=Table;v=1;g=meta.k8s.io): the
// server prints the columns and kubectl only lays them out. Without it kubectl shows NAME and AGE only,
// and -o wide nothing more, so the lab serves the same columns `flatnet get` prints (api/format.ts).
import { columns as kindColumns, humanDuration, type Columns } from '../api/format.js';
import type { KubeObject } from '../api/types.js';
import { isFlatnetKind, type Resource } from './resources.js';

/** What the client asked the row objects to carry (?includeObject=): kubectl's default is Metadata. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** Whether an Accept header asks for a Table (kubectl lists the Table types first, then plain JSON). */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params.includes('as=Table') && params.includes('g=meta.k8s.io') && (params.includes('v=v1') || params.includes('v=v1beta1'));
  });
}

/** The apiVersion of the Table asked for: v1 unless the client only accepts v1beta1. */
export function tableVersion(accept: string | undefined): string {
  return accept && accept.includes('as=Table') && !/v=v1(?!beta)/.test(accept) ? 'meta.k8s.io/v1beta1' : 'meta.k8s.io/v1';
}

export interface TableOptions {
  includeObject: IncludeObject;
  /** Leave the column definitions out (a watch sends them on its first event only). */
  noHeaders?: boolean;
  now?: number;
  apiVersion?: string;
}

function rowObject(o: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return o;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

/** `flatnet get`'s columns for flatnet's kinds; NAME and AGE (as kubectl's default) for the extra ones. */
function columns(kind: string, wide: boolean, now: number): Columns {
  if (isFlatnetKind(kind)) return kindColumns(kind, wide, now);
  const age = (o: KubeObject) => (o.metadata.creationTimestamp ? humanDuration(now - Date.parse(o.metadata.creationTimestamp)) : '<unknown>');
  return { headers: ['NAME', 'AGE'], row: (o) => [o.metadata.name, age(o)] };
}

/** Pure: the Table of `objects` of resource `r`, as of `now`. */
export function toTable(r: Resource, objects: KubeObject[], resourceVersion: string | undefined, o: TableOptions) {
  const now = o.now ?? Date.now();
  const narrow = columns(r.kind, false, now).headers.length;
  const all = columns(r.kind, true, now);
  const columnDefinitions = all.headers.map((h, i) => ({
    name: h === 'NAME' ? 'Name' : h,
    type: 'string',
    format: h === 'NAME' ? 'name' : '',
    description: h === 'NAME' ? 'Name must be unique within a namespace.' : '',
    // kubectl shows priority 0 always and higher ones with -o wide.
    priority: i < narrow ? 0 : 1,
  }));
  return {
    kind: 'Table', apiVersion: o.apiVersion ?? 'meta.k8s.io/v1',
    metadata: resourceVersion !== undefined ? { resourceVersion } : {},
    ...(o.noHeaders ? {} : { columnDefinitions }),
    rows: objects.map((obj) => {
      const object = rowObject(obj, o.includeObject);
      return { cells: all.row(obj), ...(object !== undefined ? { object } : {}) };
    }),
  };
}

export function parseIncludeObject(v: string | null): IncludeObject {
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}
