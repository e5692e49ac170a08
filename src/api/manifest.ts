// Manifests (the YAML `flatnet apply -f` reads) into the objects of types.ts. Validation is strict and
// up front, so a bad file is refused whole before anything reaches the store, and each error names the
// file, the document, the object and the field, as a reader needs to find the line to fix.
//
// Fields flatnet does not read are refused, except Kubernetes fields that change nothing here (a
// container's resources, a pod's restartPolicy, ...), which are dropped: a typo or an unsupported
// feature must not pass silently, while an ordinary manifest from elsewhere still applies.
import { parseAllDocuments } from 'yaml';
import ipaddr from 'ipaddr.js';
import { checkNonRoot, parseContainerSecurityContext, parsePodSecurityContext } from './security-context.js';
import { MAX_CONTAINERS, MAX_INT32, MAX_REPLICAS, annotationsSizeProblem } from './names.js';
import { IGNORED_META, ManifestError, Where, checkFields, dnsName, isMapping, mapping, parseMeta, portName, portNumber, show, str, stringList, stringMap, typeName, type Json, type Mapping } from './manifest-fields.js';
import { parseNetworkPolicy } from './policy-manifest.js';
import type { Container, ContainerPort, Deployment, KubeObject, Namespace, Pod, PodSpec, Service, ServicePort } from './types.js';

export { ManifestError };

const IGNORED_POD_SPEC = ['restartPolicy', 'dnsPolicy', 'schedulerName',
  'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken', 'tolerations', 'affinity', 'priority',
  'priorityClassName', 'enableServiceLinks', 'preemptionPolicy', 'imagePullSecrets', 'topologySpreadConstraints', 'runtimeClassName'];
const IGNORED_CONTAINER = ['imagePullPolicy', 'resources', 'terminationMessagePath', 'terminationMessagePolicy',
  'livenessProbe', 'readinessProbe', 'startupProbe', 'stdin', 'stdinOnce', 'tty'];
const IGNORED_DEPLOYMENT_SPEC = ['strategy', 'minReadySeconds', 'revisionHistoryLimit', 'progressDeadlineSeconds', 'paused'];

export function parseManifests(text: string, file: string): KubeObject[] {
  const objects: KubeObject[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const place = `${file}: document ${i + 1}`;
    if (doc.errors.length > 0) throw new ManifestError(`${place}: invalid YAML: ${doc.errors[0].message.split('\n')[0]}`);
    const value: Json = doc.toJS();
    if (value === null || value === undefined) return; // an empty document: "---" twice, or only comments
    if (isMapping(value) && value.kind === 'List') {
      const at: Where = new Where(place, ' (List)');
      if (value.apiVersion !== 'v1') at.fail('apiVersion', `${show(value.apiVersion)}: a List is apiVersion v1`);
      const items = value.items;
      if (!Array.isArray(items)) at.fail('items', items === undefined ? 'is required' : `${show(items)} is not a list`);
      items.forEach((item: Json, j: number) => objects.push(parseObject(item, new Where(`${place}, items[${j}]`))));
    } else {
      objects.push(parseObject(value, new Where(place)));
    }
  });
  return objects;
}

function parseObject(value: Json, where: Where): KubeObject {
  if (!isMapping(value)) where.fail('', `expected an object with apiVersion and kind, got ${typeName(value)}`);
  const { apiVersion, kind } = value;
  if (typeof kind !== 'string' || kind === '') where.fail('kind', kind === undefined ? 'is required' : `${show(kind)} is not a kind`);
  const at: Where = where.about(kind, isMapping(value.metadata) ? value.metadata.name : undefined);
  if (typeof apiVersion !== 'string' || apiVersion === '') at.fail('apiVersion', apiVersion === undefined ? 'is required' : `${show(apiVersion)} is not an apiVersion`);
  const pair = `${apiVersion} ${kind}`;
  if (pair === 'v1 Node') at.fail('kind', 'a Node cannot be applied: nodes register themselves (each node\'s agent writes its Node)');
  if (pair === 'v1 Namespace') return parseNamespace(value, at);
  if (pair === 'v1 Pod') return parsePod(value, at);
  if (pair === 'apps/v1 Deployment') return parseDeployment(value, at);
  if (pair === 'v1 Service') return parseService(value, at);
  if (pair === 'networking.k8s.io/v1 NetworkPolicy') return parseNetworkPolicy(value, at);
  if (pair === 'discovery.k8s.io/v1 EndpointSlice') at.fail('kind', 'an EndpointSlice cannot be applied: the controller keeps them from each Service\'s selector');
  const expected: Record<string, string> = { Namespace: 'v1', Pod: 'v1', Deployment: 'apps/v1', Service: 'v1', NetworkPolicy: 'networking.k8s.io/v1' };
  if (expected[kind]) at.fail('apiVersion', `${show(apiVersion)}: ${kind} is apiVersion ${expected[kind]}`);
  return at.fail('kind', `kind ${show(kind)} (apiVersion ${show(apiVersion)}) is not supported: flatnet knows v1 Namespace, v1 Pod, v1 Service, apps/v1 Deployment and networking.k8s.io/v1 NetworkPolicy`);
}

function parseNamespace(v: Mapping, at: Where): Namespace {
  checkFields(v, '', ['apiVersion', 'kind', 'metadata'], ['spec', 'status'], at);
  return { apiVersion: 'v1', kind: 'Namespace', metadata: parseMeta(v.metadata, at, 'Namespace') };
}

function parsePod(v: Mapping, at: Where): Pod {
  checkFields(v, '', ['apiVersion', 'kind', 'metadata', 'spec'], ['status'], at);
  return { apiVersion: 'v1', kind: 'Pod', metadata: parseMeta(v.metadata, at, 'Pod'), spec: parsePodSpec(v.spec, 'spec', at) };
}

function parsePodSpec(v: Json, path: string, at: Where): PodSpec {
  const m = mapping(v, path, at);
  checkFields(m, path, ['containers', 'nodeName', 'hostNetwork', 'nodeSelector', 'terminationGracePeriodSeconds', 'securityContext'], IGNORED_POD_SPEC, at);
  if (!Array.isArray(m.containers) || m.containers.length === 0) {
    at.fail(`${path}.containers`, m.containers === undefined ? 'is required (a pod runs at least one container)' : `${show(m.containers)}: a pod needs a non-empty list of containers`);
  }
  if (m.containers.length > MAX_CONTAINERS) {
    at.fail(`${path}.containers`, `${m.containers.length} containers: the lab runs at most ${MAX_CONTAINERS} per pod (each is processes on this one machine)`);
  }
  const names = new Set<string>();
  const containers = m.containers.map((c, i) => {
    const container = parseContainer(c, `${path}.containers[${i}]`, at);
    if (names.has(container.name)) at.fail(`${path}.containers[${i}].name`, `${show(container.name)} is used by another container of this pod`);
    names.add(container.name);
    return container;
  });
  const spec: PodSpec = { containers };
  if (m.nodeName !== undefined) spec.nodeName = dnsName(m.nodeName, `${path}.nodeName`, at, 'subdomain');
  if (m.hostNetwork !== undefined) {
    if (typeof m.hostNetwork !== 'boolean') at.fail(`${path}.hostNetwork`, `${show(m.hostNetwork)} is not a boolean (true or false)`);
    if (m.hostNetwork) spec.hostNetwork = true; // false is the default: stored as absent, so both spellings compare equal
  }
  if (m.nodeSelector !== undefined) spec.nodeSelector = stringMap(m.nodeSelector, `${path}.nodeSelector`, at, 'label');
  const grace = m.terminationGracePeriodSeconds;
  if (grace !== undefined) {
    if (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0) at.fail(`${path}.terminationGracePeriodSeconds`, `${show(grace)} is not a whole number of seconds >= 0`);
    spec.terminationGracePeriodSeconds = grace;
  }
  const fail = (p: string, problem: string) => at.fail(p, problem);
  if (m.securityContext !== undefined) spec.securityContext = parsePodSecurityContext(m.securityContext, `${path}.securityContext`, fail);
  containers.forEach((c, i) => checkNonRoot(spec.securityContext, c.securityContext, path, `${path}.containers[${i}]`, fail));
  return spec;
}

function parseContainer(v: Json, path: string, at: Where): Container {
  const m = mapping(v, path, at);
  checkFields(m, path, ['name', 'image', 'command', 'args', 'ports', 'securityContext'], IGNORED_CONTAINER, at);
  const c: Container = { name: dnsName(m.name, `${path}.name`, at, 'label') };
  if (m.image !== undefined) c.image = str(m.image, `${path}.image`, at);
  if (m.command !== undefined) c.command = stringList(m.command, `${path}.command`, at);
  if (m.args !== undefined) c.args = stringList(m.args, `${path}.args`, at);
  if (m.ports !== undefined) {
    if (!Array.isArray(m.ports)) at.fail(`${path}.ports`, `${show(m.ports)} is not a list`);
    c.ports = m.ports.map((p, i) => parsePort(p, `${path}.ports[${i}]`, at));
  }
  if (m.securityContext !== undefined) c.securityContext = parseContainerSecurityContext(m.securityContext, `${path}.securityContext`, (p, problem) => at.fail(p, problem));
  return c;
}

function parsePort(v: Json, path: string, at: Where): ContainerPort {
  const m = mapping(v, path, at);
  checkFields(m, path, ['containerPort', 'protocol', 'name'], [], at);
  const n = portNumber(m.containerPort, `${path}.containerPort`, at);
  const port: ContainerPort = { containerPort: n, protocol: protocol(m.protocol, `${path}.protocol`, at) };
  if (m.name !== undefined) port.name = portName(m.name, `${path}.name`, at);
  return port;
}

function protocol(v: Json, path: string, at: Where): 'TCP' | 'UDP' {
  const proto = v ?? 'TCP';
  if (proto === 'SCTP') at.fail(path, '"SCTP" is not supported: this kernel has no SCTP (use TCP or UDP)');
  if (proto !== 'TCP' && proto !== 'UDP') at.fail(path, `${show(proto)} is not a protocol (TCP or UDP)`);
  return proto;
}

function oneOf<T extends string>(v: Json, allowed: readonly T[], fallback: T, path: string, at: Where, why = ''): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T)) at.fail(path, `${show(v)} is not one of ${allowed.join(', ')}${why}`);
  return v as T;
}

/** Service fields that change nothing here: dropped. */
const IGNORED_SERVICE_SPEC = ['ipFamilies', 'ipFamilyPolicy', 'allocateLoadBalancerNodePorts', 'trafficDistribution'];

function parseService(v: Mapping, at: Where): Service {
  checkFields(v, '', ['apiVersion', 'kind', 'metadata', 'spec'], ['status'], at);
  const metadata = parseMeta(v.metadata, at, 'Service');
  const m = mapping(v.spec ?? {}, 'spec', at);
  checkFields(m, 'spec', ['type', 'clusterIP', 'clusterIPs', 'selector', 'ports', 'sessionAffinity', 'sessionAffinityConfig',
    'internalTrafficPolicy', 'externalTrafficPolicy'], IGNORED_SERVICE_SPEC, at);
  if (m.type === 'LoadBalancer' || m.type === 'ExternalName') at.fail('spec.type', `${show(m.type)} is not supported: flatnet makes ClusterIP and NodePort Services`);
  const type = oneOf(m.type, ['ClusterIP', 'NodePort'] as const, 'ClusterIP', 'spec.type', at);
  if (Array.isArray(m.ipFamilies) && m.ipFamilies.some((f) => f !== 'IPv4')) at.fail('spec.ipFamilies', `${show(m.ipFamilies)}: flatnet's Services are IPv4 only`);
  if (m.ipFamilyPolicy === 'RequireDualStack') at.fail('spec.ipFamilyPolicy', '"RequireDualStack": flatnet\'s Services are IPv4 only');

  let clusterIP: string | undefined;
  if (m.clusterIP !== undefined && m.clusterIP !== '') {
    clusterIP = str(m.clusterIP, 'spec.clusterIP', at);
    if (clusterIP !== 'None' && !ipaddr.IPv4.isValidFourPartDecimal(clusterIP)) at.fail('spec.clusterIP', `${show(clusterIP)} is not an IPv4 address, "None" (headless) or empty (allocate one)`);
  }
  if (m.clusterIPs !== undefined) {
    const ips = stringList(m.clusterIPs, 'spec.clusterIPs', at);
    if (ips.length > 1) at.fail('spec.clusterIPs', `${show(ips)}: flatnet's Services have one IPv4 ClusterIP`);
    if (ips.length === 1 && clusterIP !== undefined && ips[0] !== clusterIP) at.fail('spec.clusterIPs', `${show(ips)} does not match spec.clusterIP ${show(clusterIP)}`);
    if (ips.length === 1 && clusterIP === undefined) {
      clusterIP = ips[0];
      if (clusterIP !== 'None' && !ipaddr.IPv4.isValidFourPartDecimal(clusterIP)) at.fail('spec.clusterIPs[0]', `${show(clusterIP)} is not an IPv4 address or "None"`);
    }
  }
  if (clusterIP === 'None' && type === 'NodePort') at.fail('spec.clusterIP', '"None" (headless) cannot be used with type NodePort');

  const ports: ServicePort[] = [];
  if (m.ports !== undefined && !Array.isArray(m.ports)) at.fail('spec.ports', `${show(m.ports)} is not a list`);
  const rawPorts = (m.ports ?? []) as Json[];
  if (rawPorts.length === 0 && clusterIP !== 'None') at.fail('spec.ports', 'is required: a Service that is not headless needs at least one port');
  rawPorts.forEach((p, i) => {
    const path = `spec.ports[${i}]`;
    const pm = mapping(p, path, at);
    checkFields(pm, path, ['name', 'protocol', 'port', 'targetPort', 'nodePort'], ['appProtocol'], at);
    const port: ServicePort = { protocol: protocol(pm.protocol, `${path}.protocol`, at), port: portNumber(pm.port, `${path}.port`, at), targetPort: 0 };
    if (pm.name !== undefined) port.name = portName(pm.name, `${path}.name`, at);
    if (rawPorts.length > 1 && port.name === undefined) at.fail(`${path}.name`, 'is required when a Service has more than one port');
    const target = pm.targetPort;
    if (target === undefined || target === 0 || target === '') port.targetPort = port.port;
    else if (typeof target === 'number') port.targetPort = portNumber(target, `${path}.targetPort`, at);
    else if (typeof target === 'string' && /^\d+$/.test(target)) port.targetPort = portNumber(Number(target), `${path}.targetPort`, at);
    else port.targetPort = portName(target, `${path}.targetPort`, at);
    if (pm.nodePort !== undefined && pm.nodePort !== 0) {
      if (type !== 'NodePort') at.fail(`${path}.nodePort`, `${show(pm.nodePort)}: only a Service of type NodePort has node ports`);
      port.nodePort = portNumber(pm.nodePort, `${path}.nodePort`, at);
    }
    const twin = ports.findIndex((q) => (port.name !== undefined && q.name === port.name) || (q.port === port.port && q.protocol === port.protocol));
    if (twin >= 0) at.fail(`${path}`, `repeats spec.ports[${twin}] (${ports[twin].name ?? ''} ${ports[twin].port}/${ports[twin].protocol}): names and port/protocol pairs must be unique`);
    ports.push(port);
  });

  const spec: Service['spec'] = {
    type, ports,
    sessionAffinity: oneOf(m.sessionAffinity, ['None', 'ClientIP'] as const, 'None', 'spec.sessionAffinity', at),
    internalTrafficPolicy: oneOf(m.internalTrafficPolicy, ['Cluster', 'Local'] as const, 'Cluster', 'spec.internalTrafficPolicy', at),
  };
  if (clusterIP !== undefined) spec.clusterIP = clusterIP;
  if (m.selector !== undefined) {
    const selector = stringMap(m.selector, 'spec.selector', at, 'label');
    if (Object.keys(selector).length > 0) spec.selector = selector;
  }
  if (m.sessionAffinityConfig !== undefined) {
    if (spec.sessionAffinity !== 'ClientIP') at.fail('spec.sessionAffinityConfig', 'is only for spec.sessionAffinity: ClientIP');
    const c = mapping(m.sessionAffinityConfig, 'spec.sessionAffinityConfig', at);
    checkFields(c, 'spec.sessionAffinityConfig', ['clientIP'], [], at);
    const ci = mapping(c.clientIP, 'spec.sessionAffinityConfig.clientIP', at);
    checkFields(ci, 'spec.sessionAffinityConfig.clientIP', ['timeoutSeconds'], [], at);
    const t = ci.timeoutSeconds ?? 10800;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 86400) at.fail('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `${show(t)} is not a whole number of seconds from 1 to 86400`);
  }
  // Kubernetes' default: three hours of stickiness.
  if (spec.sessionAffinity === 'ClientIP') {
    const c = m.sessionAffinityConfig as { clientIP?: { timeoutSeconds?: number } } | undefined;
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: c?.clientIP?.timeoutSeconds ?? 10800 } };
  }
  if (m.externalTrafficPolicy !== undefined && type !== 'NodePort') at.fail('spec.externalTrafficPolicy', `${show(m.externalTrafficPolicy)}: only a Service of type NodePort has an external traffic policy`);
  if (type === 'NodePort') spec.externalTrafficPolicy = oneOf(m.externalTrafficPolicy, ['Cluster', 'Local'] as const, 'Cluster', 'spec.externalTrafficPolicy', at);
  return { apiVersion: 'v1', kind: 'Service', metadata, spec };
}

function parseDeployment(v: Mapping, at: Where): Deployment {
  checkFields(v, '', ['apiVersion', 'kind', 'metadata', 'spec'], ['status'], at);
  const metadata = parseMeta(v.metadata, at, 'Deployment');
  const spec = mapping(v.spec, 'spec', at);
  checkFields(spec, 'spec', ['replicas', 'selector', 'template'], IGNORED_DEPLOYMENT_SPEC, at);
  const replicas = spec.replicas ?? 1;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > MAX_INT32) at.fail('spec.replicas', `${show(replicas)} is not a whole number from 0 to ${MAX_INT32}`);
  if (replicas > MAX_REPLICAS) at.fail('spec.replicas', `${replicas}: the lab runs at most ${MAX_REPLICAS} replicas per Deployment (every pod is a stored object and processes on this one machine)`);

  const selector = mapping(spec.selector, 'spec.selector', at);
  checkFields(selector, 'spec.selector', ['matchLabels'], [], at);
  const matchLabels = stringMap(selector.matchLabels, 'spec.selector.matchLabels', at, 'label');
  if (Object.keys(matchLabels).length === 0) at.fail('spec.selector.matchLabels', 'is empty: a Deployment selects its pods by at least one label');

  const template = mapping(spec.template, 'spec.template', at);
  checkFields(template, 'spec.template', ['metadata', 'spec'], [], at);
  const tmeta = mapping(template.metadata ?? {}, 'spec.template.metadata', at);
  checkFields(tmeta, 'spec.template.metadata', ['labels', 'annotations'], [...IGNORED_META, 'name', 'namespace'], at);
  const labels = tmeta.labels === undefined ? {} : stringMap(tmeta.labels, 'spec.template.metadata.labels', at, 'label');
  // As Kubernetes requires: the pods a Deployment makes must be the pods its selector finds.
  for (const [k, val] of Object.entries(matchLabels)) {
    if (labels[k] !== val) {
      at.fail('spec.template.metadata.labels', `${show(labels)} does not match spec.selector.matchLabels ${show(matchLabels)} (${k}: ${show(val)} is ${k in labels ? `${show(labels[k])}` : 'missing'})`);
    }
  }
  const templateMeta: { labels?: Record<string, string>; annotations?: Record<string, string> } = { labels };
  if (tmeta.annotations !== undefined) {
    templateMeta.annotations = stringMap(tmeta.annotations, 'spec.template.metadata.annotations', at, 'any');
    const problem = annotationsSizeProblem(templateMeta.annotations);
    if (problem) at.fail('spec.template.metadata.annotations', problem);
  }

  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: { replicas, selector: { matchLabels }, template: { metadata: templateMeta, spec: parsePodSpec(template.spec, 'spec.template.spec', at) } },
  };
}
