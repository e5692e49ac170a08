// The field readers every manifest kind shares (manifest.ts, policy-manifest.ts): each checks one value
// and, when it is wrong, fails with the file, document, object, field path and value, so a reader finds
// the line to fix.
import { DNS_LABEL, MAX_DEPLOYMENT_NAME, annotationsSizeProblem, dnsNameProblem, labelValueProblem, qualifiedKeyProblem, type DnsRule } from './names.js';
import type { ObjectMeta } from './types.js';

export class ManifestError extends Error {
  /** The field path and the problem alone, for the API's 422 causes (apiserver/admit.ts). */
  constructor(message: string, readonly field?: string, readonly problem?: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

export type Json = unknown;
export type Mapping = Record<string, Json>;

/** Kubernetes metadata that the server owns or flatnet does not use: accepted and dropped. */
export const IGNORED_META = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp',
  'deletionGracePeriodSeconds', 'managedFields', 'finalizers', 'selfLink', 'ownerReferences'];
/** Where an error is: "pods.yaml: document 2 (Pod \"web\")"; fails with a field path and a problem. */
export class Where {
  constructor(private readonly place: string, private readonly object = '') {}
  about(kind: string, name: unknown): Where {
    return new Where(this.place, typeof name === 'string' && name !== '' ? ` (${kind} "${name}")` : ` (${kind})`);
  }
  fail(path: string, problem: string): never {
    throw new ManifestError(`${this.place}${this.object}: ${path ? `${path}: ` : ''}${problem}`, path, problem);
  }
}

/** A value as the error shows it: JSON, cut short. */
export function show(v: Json): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function typeName(v: Json): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

export const isMapping = (v: Json): v is Mapping => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Refuses fields that are neither read (`known`) nor harmless to drop (`ignored`). */
export function checkFields(m: Mapping, path: string, known: string[], ignored: string[], at: Where): void {
  for (const k of Object.keys(m)) {
    if (known.includes(k) || ignored.includes(k)) continue;
    at.fail(path ? `${path}.${k}` : k, `field is not supported by flatnet (it reads ${known.join(', ')})`);
  }
}

export function mapping(v: Json, path: string, at: Where): Mapping {
  if (!isMapping(v)) at.fail(path, v === undefined ? 'is required' : `${show(v)} is not a mapping`);
  return v;
}

export function str(v: Json, path: string, at: Where): string {
  if (typeof v !== 'string') at.fail(path, v === undefined ? 'is required' : `${show(v)} is not a string${typeof v === 'number' || typeof v === 'boolean' ? ` (quote it: "${v}")` : ''}`);
  return v;
}

export function stringList(v: Json, path: string, at: Where): string[] {
  if (!Array.isArray(v)) at.fail(path, `${show(v)} is not a list of strings`);
  return v.map((s, i) => str(s, `${path}[${i}]`, at));
}

export function dnsName(v: Json, path: string, at: Where, rule: DnsRule): string {
  const s = str(v, path, at);
  const problem = dnsNameProblem(s, rule);
  if (problem) at.fail(path, `${show(s)} ${problem}`);
  return s;
}

export function stringMap(v: Json, path: string, at: Where, values: 'label' | 'any'): Record<string, string> {
  const m = mapping(v, path, at);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(m)) {
    if (qualifiedKeyProblem(k)) at.fail(path, `key ${show(k)} ${qualifiedKeyProblem(k)}`);
    const s = str(val, `${path}.${k}`, at);
    const problem = values === 'label' ? labelValueProblem(s) : undefined;
    if (problem) at.fail(`${path}.${k}`, `${show(s)} ${problem}`);
    out[k] = s;
  }
  return out;
}

export function parseMeta(v: Json, at: Where, kind: 'Namespace' | 'Pod' | 'Deployment' | 'Service' | 'NetworkPolicy'): ObjectMeta {
  const m = mapping(v, 'metadata', at);
  checkFields(m, 'metadata', ['name', 'namespace', 'labels', 'annotations'], IGNORED_META, at);
  const meta: ObjectMeta = { name: dnsName(m.name, 'metadata.name', at, kind === 'Namespace' ? 'label' : kind === 'Service' ? 'dns1035' : 'subdomain') };
  if (kind === 'Deployment' && meta.name.length > MAX_DEPLOYMENT_NAME) {
    at.fail('metadata.name', `${show(meta.name)} is ${meta.name.length} characters; a Deployment's name may have at most ${MAX_DEPLOYMENT_NAME}, so that its pods' names ("<name>-xxxxx") fit a 63-character DNS label`);
  }
  if (kind === 'Namespace') {
    if (m.namespace !== undefined) at.fail('metadata.namespace', `${show(m.namespace)}: a Namespace is cluster-scoped and has no namespace`);
  } else {
    meta.namespace = m.namespace === undefined ? 'default' : dnsName(m.namespace, 'metadata.namespace', at, 'label');
  }
  if (m.labels !== undefined) meta.labels = stringMap(m.labels, 'metadata.labels', at, 'label');
  if (m.annotations !== undefined) {
    meta.annotations = stringMap(m.annotations, 'metadata.annotations', at, 'any');
    const problem = annotationsSizeProblem(meta.annotations);
    if (problem) at.fail('metadata.annotations', problem);
  }
  return meta;
}

/** An IANA service name, as container and Service ports are named. */
export function portName(v: Json, path: string, at: Where): string {
  const name = str(v, path, at);
  if (name.length > 15 || !DNS_LABEL.test(name) || !/[a-z]/.test(name) || name.includes('--')) {
    at.fail(path, `${show(name)} is not a port name (at most 15 lowercase letters, digits and '-', with a letter, no "--")`);
  }
  return name;
}

export function portNumber(v: Json, path: string, at: Where): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) at.fail(path, v === undefined ? 'is required' : `${show(v)} is not a port (1-65535)`);
  return v;
}

