// The three patch formats a PATCH carries, applied to a stored object's JSON: JSON merge patch (RFC 7386),
// Kubernetes' strategic merge patch (lists of named things merge by their key, e.g. containers by name,
// conditions by type) and JSON patch (RFC 6902, which kubectl sends for some edits).
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

export const PATCH_TYPES = ['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json'] as const;
export type PatchType = typeof PATCH_TYPES[number];

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The patch type of a Content-Type header ("application/merge-patch+json; charset=utf-8"), or undefined. */
export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  const t = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return PATCH_TYPES.find((p) => p === t);
}

/** Applies `patch` (already parsed JSON) of `type` to `target` (for strategic merge, an object of `kind`); never mutates. */
export function applyPatch(type: PatchType, target: Json, patch: Json, kind: string): Json {
  switch (type) {
    case 'application/merge-patch+json': return mergePatch(target, patch);
    case 'application/strategic-merge-patch+json': return strategicMerge(target, patch, [], kind);
    case 'application/json-patch+json': return jsonPatch(target, patch);
  }
}

/** RFC 7386: objects merge recursively, null removes a key, anything else (lists too) replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return patch;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/**
 * The merge key of a list at `path` (field names from the object's root, no indices), as Kubernetes' types
 * declare them (patchMergeKey), for the kinds flatnet serves; undefined: the list is replaced whole.
 */
export function mergeKeyOf(path: string[], kind: string): string[] | undefined {
  const field = path[path.length - 1];
  const parent = path[path.length - 2];
  if (['containers', 'initContainers', 'ephemeralContainers', 'env', 'volumes', 'imagePullSecrets'].includes(field)) return ['name'];
  if (field === 'volumeMounts' || field === 'volumeDevices') return [field === 'volumeMounts' ? 'mountPath' : 'devicePath'];
  if (field === 'ports' && ['containers', 'initContainers', 'ephemeralContainers'].includes(parent ?? '')) return ['containerPort', 'protocol'];
  if (field === 'ports' && kind === 'Service' && path.length === 2 && parent === 'spec') return ['port', 'protocol'];
  if (field === 'conditions' && parent === 'status') return ['type'];
  if (field === 'addresses' && kind === 'Node') return ['type'];
  if (field === 'taints' && kind === 'Node') return ['key', 'effect'];
  if (field === 'ownerReferences' && parent === 'metadata') return ['uid'];
  if ((field === 'podIPs' || field === 'hostIPs') && parent === 'status') return ['ip'];
  return undefined;
}

/** Lists of plain values that merge (a union) rather than being replaced. */
const MERGED_PRIMITIVE_LISTS = new Set(['metadata.finalizers']);

/** Protocol is TCP when left out, so {port: 80} and {port: 80, protocol: TCP} name the same port. */
const keyValue = (item: Json, field: string): Json => (isObj(item) ? item[field] ?? (field === 'protocol' ? 'TCP' : null) : null);
const sameKey = (a: Json, b: Json, key: string[]) => key.every((f) => keyValue(a, f) === keyValue(b, f));

/** Strategic merge: as a merge patch, but keyed lists merge item by item and the $patch/$setElementOrder directives apply. */
export function strategicMerge(target: Json, patch: Json, path: string[], kind: string): Json {
  if (!isObj(patch)) return patch;
  if (patch.$patch === 'replace') { const { $patch: _r, ...rest } = patch; return stripDirectives(rest); }
  if (patch.$patch === 'delete') return null;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const gone = Array.isArray(v) ? v : [];
      if (Array.isArray(out[field])) out[field] = (out[field] as Json[]).filter((x) => !gone.includes(x));
      continue;
    }
    const at = [...path, k];
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v)) {
      const merged = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, at, kind);
      out[k] = reorder(merged, patch[`$setElementOrder/${k}`], mergeKeyOf(at, kind));
      continue;
    }
    out[k] = strategicMerge(out[k] ?? null, v, at, kind);
  }
  if (Array.isArray(patch.$retainKeys)) for (const k of Object.keys(out)) if (!(patch.$retainKeys as Json[]).includes(k)) delete out[k];
  return out;
}

function mergeList(current: Json[], patch: Json[], path: string[], kind: string): Json[] {
  if (MERGED_PRIMITIVE_LISTS.has(path.join('.'))) return [...current, ...patch.filter((x) => !current.includes(x))];
  const key = mergeKeyOf(path, kind);
  if (!key) return patch.map(stripDirectives);
  if (patch.some((p) => isObj(p) && p.$patch === 'replace')) return patch.filter((p) => !(isObj(p) && p.$patch === 'replace')).map(stripDirectives);
  const out = [...current];
  for (const item of patch) {
    const i = out.findIndex((c) => sameKey(c, item, key));
    if (isObj(item) && item.$patch === 'delete') { if (i >= 0) out.splice(i, 1); continue; }
    if (i >= 0) out[i] = strategicMerge(out[i], item, path, kind);
    else out.push(stripDirectives(item));
  }
  return out;
}

/** Puts the listed items first, in the order $setElementOrder gives, as kubectl asks after an apply. */
function reorder(list: Json[], order: Json | undefined, key: string[] | undefined): Json[] {
  if (!Array.isArray(order) || !key) return list;
  const rank = (item: Json) => { const i = order.findIndex((o) => sameKey(o, item, key)); return i < 0 ? order.length : i; };
  return list.map((item, i) => ({ item, i })).sort((a, b) => rank(a.item) - rank(b.item) || a.i - b.i).map((x) => x.item);
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

/** RFC 6902: add, remove, replace, move, copy and test, in order; a failed test or a missing path fails the whole patch. */
export function jsonPatch(target: Json, patch: Json): Json {
  if (!Array.isArray(patch)) throw new PatchError('a JSON patch is a list of operations');
  let doc: Json = structuredClone(target);
  for (const op of patch) {
    if (!isObj(op) || typeof op.op !== 'string' || typeof op.path !== 'string') throw new PatchError(`invalid JSON patch operation ${JSON.stringify(op)}`);
    const path = pointer(op.path);
    switch (op.op) {
      case 'add': doc = put(doc, path, structuredClone(op.value ?? null), 'add'); break;
      case 'replace': doc = put(doc, path, structuredClone(op.value ?? null), 'replace'); break;
      case 'remove': doc = remove(doc, path); break;
      case 'move': { const from = pointer(String(op.from)); const v = lookup(doc, from); doc = put(remove(doc, from), path, v, 'add'); break; }
      case 'copy': doc = put(doc, path, structuredClone(lookup(doc, pointer(String(op.from)))), 'add'); break;
      case 'test': if (JSON.stringify(lookup(doc, path)) !== JSON.stringify(op.value)) throw new PatchError(`test operation failed at ${op.path}`); break;
      default: throw new PatchError(`unknown JSON patch operation "${op.op}"`);
    }
  }
  return doc;
}

function pointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`invalid JSON pointer "${p}"`);
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function lookup(doc: Json, path: string[]): Json {
  let cur: Json = doc;
  for (const seg of path) {
    if (Array.isArray(cur) && /^\d+$/.test(seg) && Number(seg) < cur.length) cur = cur[Number(seg)];
    else if (isObj(cur) && seg in cur) cur = cur[seg];
    else throw new PatchError(`path /${path.join('/')} does not exist`);
  }
  return cur;
}

/** The parent container of `path` (which must exist) and the last segment. */
function parentOf(doc: Json, path: string[]): { parent: Json; last: string } {
  if (path.length === 0) throw new PatchError('the root cannot be changed by this operation');
  return { parent: lookup(doc, path.slice(0, -1)), last: path[path.length - 1] };
}

function put(doc: Json, path: string[], value: Json, how: 'add' | 'replace'): Json {
  if (path.length === 0) return value;
  const { parent, last } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!/^\d+$|^-$/.test(last) || i > parent.length || (how === 'replace' && i >= parent.length)) throw new PatchError(`index ${last} is out of range`);
    parent.splice(i, how === 'add' ? 0 : 1, value);
  } else if (isObj(parent)) {
    if (how === 'replace' && !(last in parent)) throw new PatchError(`path /${path.join('/')} does not exist`);
    parent[last] = value;
  } else throw new PatchError(`path /${path.join('/')}: the parent is not an object or list`);
  return doc;
}

function remove(doc: Json, path: string[]): Json {
  lookup(doc, path);
  const { parent, last } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else if (isObj(parent)) delete parent[last];
  return doc;
}
