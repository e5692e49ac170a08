// networking.k8s.io/v1 NetworkPolicy manifests into the stored object: validated as the API server
// validates them (pkg/apis/networking/validation) and defaulted as it defaults them (networking/v1
// defaults), so a policy kubectl would refuse is refused here, with the field and the value named.
//
// The stored form is what the API server returns: empty lists and maps are left out (Go's omitempty),
// every port has its protocol, and policyTypes is always set.
import ipaddr from 'ipaddr.js';
import { labelValueProblem, qualifiedKeyProblem } from './names.js';
import { Where, checkFields, mapping, parseMeta, portName, show, str, stringMap, type Json, type Mapping } from './manifest-fields.js';
import type { LabelSelector, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, PolicyProtocol } from './types.js';

const PROTOCOLS: readonly PolicyProtocol[] = ['TCP', 'UDP', 'SCTP'];
const POLICY_TYPES = ['Ingress', 'Egress'] as const;
const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
type Operator = (typeof OPERATORS)[number];

/** As Go decodes JSON: null is the same as absent. */
const given = (v: Json): boolean => v !== undefined && v !== null;

/** A list field: absent or null is empty. */
function list(v: Json, path: string, at: Where): Json[] {
  if (!given(v)) return [];
  if (!Array.isArray(v)) at.fail(path, `${show(v)} is not a list`);
  return v;
}

export function parseNetworkPolicy(v: Mapping, at: Where): NetworkPolicy {
  checkFields(v, '', ['apiVersion', 'kind', 'metadata', 'spec'], ['status'], at);
  const metadata = parseMeta(v.metadata, at, 'NetworkPolicy');
  const m = given(v.spec) ? mapping(v.spec, 'spec', at) : {};
  checkFields(m, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress'], [], at);
  // The API server takes a missing podSelector as the empty one: every pod of the namespace.
  const podSelector = given(m.podSelector) ? selector(m.podSelector, 'spec.podSelector', at) : {};
  const ingress = list(m.ingress, 'spec.ingress', at).map((r, i): NetworkPolicyIngressRule => {
    const path = `spec.ingress[${i}]`;
    const rule = given(r) ? mapping(r, path, at) : {};
    checkFields(rule, path, ['ports', 'from'], [], at);
    const out: NetworkPolicyIngressRule = {};
    const ports = list(rule.ports, `${path}.ports`, at).map((p, j) => port(p, `${path}.ports[${j}]`, at));
    const from = list(rule.from, `${path}.from`, at).map((p, j) => peer(p, `${path}.from[${j}]`, at));
    if (ports.length) out.ports = ports;
    if (from.length) out.from = from;
    return out;
  });
  const egress = list(m.egress, 'spec.egress', at).map((r, i): NetworkPolicyEgressRule => {
    const path = `spec.egress[${i}]`;
    const rule = given(r) ? mapping(r, path, at) : {};
    checkFields(rule, path, ['ports', 'to'], [], at);
    const out: NetworkPolicyEgressRule = {};
    const ports = list(rule.ports, `${path}.ports`, at).map((p, j) => port(p, `${path}.ports[${j}]`, at));
    const to = list(rule.to, `${path}.to`, at).map((p, j) => peer(p, `${path}.to[${j}]`, at));
    if (ports.length) out.ports = ports;
    if (to.length) out.to = to;
    return out;
  });
  // Keys in the API server's order: podSelector, ingress, egress, policyTypes.
  const spec: NetworkPolicy['spec'] = {
    podSelector,
    ...(ingress.length ? { ingress } : {}),
    ...(egress.length ? { egress } : {}),
    policyTypes: policyTypes(m.policyTypes, egress.length > 0, at),
  };
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec };
}

/** As the API server: at most two, each Ingress or Egress; none given is [Ingress], plus Egress when there are egress rules. */
function policyTypes(v: Json, hasEgress: boolean, at: Where): Array<'Ingress' | 'Egress'> {
  const types = list(v, 'spec.policyTypes', at);
  if (types.length > POLICY_TYPES.length) at.fail('spec.policyTypes', `${show(types)} may not specify more than two policyTypes`);
  if (types.length === 0) return hasEgress ? ['Ingress', 'Egress'] : ['Ingress'];
  return types.map((t, i) => {
    if (typeof t !== 'string' || !(POLICY_TYPES as readonly string[]).includes(t)) at.fail(`spec.policyTypes[${i}]`, `${show(t)} is not supported: must be Ingress or Egress`);
    return t as 'Ingress' | 'Egress';
  });
}

/** A label selector, as ValidateLabelSelector checks it. */
function selector(v: Json, path: string, at: Where): LabelSelector {
  const m = mapping(v, path, at);
  checkFields(m, path, ['matchLabels', 'matchExpressions'], [], at);
  const out: LabelSelector = {};
  if (given(m.matchLabels)) {
    const labels = stringMap(m.matchLabels, `${path}.matchLabels`, at, 'label');
    if (Object.keys(labels).length) out.matchLabels = labels;
  }
  const expressions = list(m.matchExpressions, `${path}.matchExpressions`, at).map((e, i) => expression(e, `${path}.matchExpressions[${i}]`, at));
  if (expressions.length) out.matchExpressions = expressions;
  return out;
}

function expression(v: Json, path: string, at: Where): NonNullable<LabelSelector['matchExpressions']>[number] {
  const m = mapping(v, path, at);
  checkFields(m, path, ['key', 'operator', 'values'], [], at);
  const key = str(m.key, `${path}.key`, at);
  const keyProblem = qualifiedKeyProblem(key);
  if (keyProblem) at.fail(`${path}.key`, `${show(key)} ${keyProblem}`);
  if (!given(m.operator)) at.fail(`${path}.operator`, 'is required (In, NotIn, Exists or DoesNotExist)');
  if (typeof m.operator !== 'string' || !(OPERATORS as readonly string[]).includes(m.operator)) {
    at.fail(`${path}.operator`, `${show(m.operator)} is not a valid selector operator (In, NotIn, Exists or DoesNotExist)`);
  }
  const operator = m.operator as Operator;
  const values = list(m.values, `${path}.values`, at).map((s, i) => {
    const value = str(s, `${path}.values[${i}]`, at);
    const problem = labelValueProblem(value);
    if (problem) at.fail(`${path}.values[${i}]`, `${show(value)} ${problem}`);
    return value;
  });
  if ((operator === 'In' || operator === 'NotIn') && values.length === 0) {
    at.fail(`${path}.values`, given(m.values) ? `${show(m.values)} may not be empty when operator is "${operator}"` : `is required (at least one value) when operator is "${operator}"`);
  }
  if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) {
    at.fail(`${path}.values`, `${show(values)} may not be specified when operator is "${operator}"`);
  }
  return values.length ? { key, operator, values } : { key, operator };
}

/** One peer: ipBlock alone, or podSelector and/or namespaceSelector. */
function peer(v: Json, path: string, at: Where): NetworkPolicyPeer {
  const m = given(v) ? mapping(v, path, at) : {};
  checkFields(m, path, ['podSelector', 'namespaceSelector', 'ipBlock'], [], at);
  const present = ['podSelector', 'namespaceSelector', 'ipBlock'].filter((k) => given(m[k]));
  if (present.length === 0) at.fail(path, `${show(v ?? {})} must specify a peer (podSelector, namespaceSelector or ipBlock)`);
  if (present.length > 1 && present.includes('ipBlock')) {
    at.fail(path, `may not specify both ipBlock and another peer (it has ${present.join(' and ')}): write them as separate peers`);
  }
  const out: NetworkPolicyPeer = {};
  if (given(m.podSelector)) out.podSelector = selector(m.podSelector, `${path}.podSelector`, at);
  if (given(m.namespaceSelector)) out.namespaceSelector = selector(m.namespaceSelector, `${path}.namespaceSelector`, at);
  if (given(m.ipBlock)) out.ipBlock = ipBlock(m.ipBlock, `${path}.ipBlock`, at);
  return out;
}

function ipBlock(v: Json, path: string, at: Where): NonNullable<NetworkPolicyPeer['ipBlock']> {
  const m = mapping(v, path, at);
  checkFields(m, path, ['cidr', 'except'], [], at);
  if (!given(m.cidr) || m.cidr === '') at.fail(`${path}.cidr`, 'is required');
  const cidr = str(m.cidr, `${path}.cidr`, at);
  const [net, bits] = parseCidr(cidr, `${path}.cidr`, at);
  const except = list(m.except, `${path}.except`, at).map((e, i) => {
    const p = `${path}.except[${i}]`;
    const text = str(e, p, at);
    const [addr, len] = parseCidr(text, p, at);
    // As the API server: the except's network must lie inside cidr's, with a longer prefix.
    if (addr.kind() !== net.kind()) at.fail(p, `${show(text)} must be a strict subset of cidr ${show(cidr)} (it is ${addr.kind() === 'ipv4' ? 'IPv4' : 'IPv6'}, the cidr ${net.kind() === 'ipv4' ? 'IPv4' : 'IPv6'})`);
    if (len <= bits || !addr.match(net, bits)) at.fail(p, `${show(text)} must be a strict subset of cidr ${show(cidr)}`);
    return text;
  });
  // Kept as written, host bits and all (the API server keeps them; the dataplane takes the network).
  return except.length ? { cidr, except } : { cidr };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** "address/prefix", IPv4 or IPv6; IPv4 octets and prefixes without leading zeros (they are ambiguous). */
function parseCidr(text: string, path: string, at: Where): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const bad = () => at.fail(path, `${show(text)} is not a valid CIDR (an IPv4 or IPv6 address, "/" and a prefix length, e.g. "10.0.0.0/16" or "fd00::/64")`);
  const slash = text.indexOf('/');
  if (slash < 0) bad();
  const addr = text.slice(0, slash);
  const prefix = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefix)) bad();
  const bits = Number(prefix);
  if (IPV4.test(addr)) {
    if (bits > 32) bad();
    return [ipaddr.IPv4.parse(addr), bits];
  }
  if (!addr.includes(':') || addr.includes('%') || !ipaddr.IPv6.isValid(addr) || bits > 128) bad();
  return [ipaddr.IPv6.parse(addr), bits];
}

/** A port: protocol (default TCP), a number or IANA name, and an endPort range on a number. */
function port(v: Json, path: string, at: Where): NetworkPolicyPort {
  const m = given(v) ? mapping(v, path, at) : {};
  checkFields(m, path, ['protocol', 'port', 'endPort'], [], at);
  let protocol: PolicyProtocol = 'TCP';
  if (given(m.protocol)) {
    if (typeof m.protocol !== 'string' || !PROTOCOLS.includes(m.protocol as PolicyProtocol)) at.fail(`${path}.protocol`, `${show(m.protocol)} is not supported: must be one of TCP, UDP, SCTP`);
    protocol = m.protocol as PolicyProtocol;
  }
  const out: NetworkPolicyPort = { protocol };
  const end = m.endPort;
  if (given(end) && (typeof end !== 'number' || !Number.isInteger(end))) at.fail(`${path}.endPort`, `${show(end)} is not a port number`);
  if (!given(m.port)) {
    if (given(end)) at.fail(`${path}.endPort`, `${show(end)} may not be specified when port is not specified`);
    return out;
  }
  if (typeof m.port === 'number') {
    if (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535) at.fail(`${path}.port`, `${show(m.port)} is not a port (1-65535)`);
    out.port = m.port;
    if (given(end)) {
      const e = end as number;
      if (e < m.port) at.fail(`${path}.endPort`, `${e} must be greater than or equal to port (${m.port})`);
      if (e > 65535) at.fail(`${path}.endPort`, `${e} is not a port (1-65535)`);
      out.endPort = e;
    }
    return out;
  }
  if (typeof m.port !== 'string') at.fail(`${path}.port`, `${show(m.port)} is not a port number or name`);
  // A quoted number is a name to the API server (intstr), and no valid one: names need a letter.
  if (/^\d+$/.test(m.port)) at.fail(`${path}.port`, `${show(m.port)} is not a port name (a name needs a letter; write the number without quotes)`);
  out.port = portName(m.port, `${path}.port`, at);
  if (given(end)) at.fail(`${path}.endPort`, `${show(end)} may not be specified when port is non-numeric (${show(m.port)})`);
  return out;
}
