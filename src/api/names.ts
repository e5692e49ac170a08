// Kubernetes' rules for names, label and annotation keys and values, and the size limits the API
// server enforces (apimachinery's validation), plus what the lab can run. Pure: each check returns
// the problem in words, or undefined; the manifest parser puts the field and the value in front.

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A label value, or the name part of a label/annotation key. */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** A Service name: a DNS-1035 label (it becomes a DNS name and environment variable names). */
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Kubernetes' limit on an object's annotations: keys and values together, in bytes. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** A Deployment's pods are "<name>-<5 characters>", and a pod's name becomes its hostname: a DNS label (63). */
export const MAX_DEPLOYMENT_NAME = 63 - 6;
/** Kubernetes' replicas is an int32. */
export const MAX_INT32 = 2 ** 31 - 1;
/**
 * What the lab can run. Kubernetes has no per-pod container limit, but the lab runs each container as
 * processes on one machine: a pod of 10,000 containers would take its node down. 64 is far above any
 * real pod (an app and a few sidecars) and keeps a full node (110 pods) within one machine's means.
 */
export const MAX_CONTAINERS = 64;
/** Pods a Deployment may ask for here: each is a stored object and, once scheduled, processes on this machine. */
export const MAX_REPLICAS = 10_000;

export type DnsRule = 'label' | 'subdomain' | 'dns1035';

/** Why `s` is not a name of the given rule, or undefined. */
export function dnsNameProblem(s: string, rule: DnsRule): string | undefined {
  const ok = rule === 'label' ? s.length <= 63 && DNS_LABEL.test(s)
    : rule === 'dns1035' ? s.length <= 63 && DNS_1035_LABEL.test(s)
      : s.length <= 253 && DNS_SUBDOMAIN.test(s);
  if (ok) return undefined;
  const long = s.length > (rule === 'subdomain' ? 253 : 63) ? ` (it is ${s.length} characters)` : '';
  return rule === 'label'
    ? `is not a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)${long}`
    : rule === 'dns1035'
      ? `is not a DNS-1035 label (at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit)${long}`
      : `is not a DNS-1123 subdomain (at most 253 lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit)${long}`;
}

/** A label or annotation key: an optional DNS-subdomain prefix and "/", then a name of at most 63. */
export function qualifiedKeyProblem(k: string): string | undefined {
  const slash = k.lastIndexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix));
  if (prefixOk && name.length <= 63 && QUALIFIED_NAME.test(name)) return undefined;
  return 'is not a valid key (an optional DNS subdomain and "/", then at most 63 letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit)';
}

export function labelValueProblem(s: string): string | undefined {
  if (s.length <= 63 && (s === '' || QUALIFIED_NAME.test(s))) return undefined;
  return 'is not a valid label value (at most 63 letters, digits, \'-\', \'_\' and \'.\', starting and ending with a letter or digit)';
}

/** Kubernetes' total-size limit on annotations, counted as it does: every key's and value's length. */
export function annotationsSizeProblem(annotations: Record<string, string>): string | undefined {
  const bytes = Object.entries(annotations).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  return bytes > MAX_ANNOTATIONS_BYTES ? `are ${bytes} bytes in total; the limit is ${MAX_ANNOTATIONS_BYTES} (256 KiB)` : undefined;
}
