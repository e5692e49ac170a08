// Why: deploy/*.yaml is applied to real clusters no test here runs; every document is held to the official
// Kubernetes 1.34 schemas (kubernetes-models' validators, compiled from the API's OpenAPI), with unknown
// fields refused as `kubectl apply --validate=strict` does, and to what flatnet's own code expects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { BIN_DIR, CONF_DIR } from '../../src/install/cni-install.js';
import { parseClusterConfig } from '../../src/api/types.js';

/** The repository: up from this compiled test, or the working directory (a build outside the repo). */
function repoRoot(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, 'deploy', 'flatnet.yaml'))) return d;
  }
  return process.cwd();
}
const ROOT = repoRoot();
const DEPLOY = join(ROOT, 'deploy');

type Obj = Record<string, any>;
interface SchemaError { instancePath: string; message?: string; keyword: string; params?: Obj }
interface Validator { (data: unknown): boolean; errors?: SchemaError[] | null }

/** kubernetes-models names each schema by its OpenAPI definition: io.k8s.api.apps.v1.DaemonSet -> IoK8sApiAppsV1DaemonSet. */
async function validatorFor(apiVersion: string, kind: string): Promise<Validator> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const name = `IoK8sApi${cap(group.split('.')[0])}${cap(version)}${kind}`;
  try {
    return (await import(`kubernetes-models/_schemas/${name}`)).validate as Validator;
  } catch {
    throw new Error(`no official schema for ${apiVersion} ${kind} (looked for ${name})`);
  }
}

/** The compiled validators carry no messages: ajv's wording, from the keyword and its params. */
function describe(e: SchemaError): string {
  if (e.message) return e.message;
  const p = e.params ?? {};
  if (e.keyword === 'type') return `must be ${p.type}`;
  if (e.keyword === 'required') return `must have required property '${p.missingProperty}'`;
  if (e.keyword === 'enum') return `must be one of ${JSON.stringify(p.allowedValues)}`;
  if (e.keyword === 'format') return `must match format "${p.format}"`;
  return `${e.keyword} ${JSON.stringify(p)}`;
}
const errorsOf = (v: Validator, obj: unknown) => (v(obj) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'}: ${describe(e)}`));

/**
 * Fields the schema does not know. The compiled validators ignore unknown keys (the OpenAPI has no
 * additionalProperties: false), so each key is probed: set to [[]], a value no typed field accepts, a key
 * the schema knows yields an error at its path and an unknown one none. Map keys (labels, data) are typed
 * by their map's value schema, so they read as known, as they should.
 */
function unknownFields(v: Validator, doc: Obj): string[] {
  const found: string[] = [];
  const walk = (node: unknown, path: string[]) => {
    if (Array.isArray(node)) { node.forEach((x, i) => walk(x, [...path, String(i)])); return; }
    if (typeof node !== 'object' || node === null) return;
    for (const key of Object.keys(node)) {
      const probe = structuredClone(doc);
      let at: Obj = probe;
      for (const p of path) at = at[p];
      at[key] = [[]];
      const where = '/' + [...path, key].map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
      v(probe);
      const hit = (v.errors ?? []).some((e) => e.instancePath === where || e.instancePath.startsWith(where + '/'));
      if (!hit) found.push(`${where}: unknown field "${key}"`);
      else walk((node as Obj)[key], [...path, key]);
    }
  };
  walk(doc, []);
  return found;
}

async function problemsOf(doc: Obj): Promise<string[]> {
  if (typeof doc?.apiVersion !== 'string' || typeof doc?.kind !== 'string') return ['/: apiVersion and kind are required'];
  const v = await validatorFor(doc.apiVersion, doc.kind);
  // apiVersion and kind are typed by the model, so they pass the probe; they need no probing past it.
  return [...errorsOf(v, doc), ...unknownFields(v, doc)];
}

function loadDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file}: empty`);
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

const manifests = readdirSync(DEPLOY).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(DEPLOY, f));
const flatnet = () => loadDocs(join(DEPLOY, 'flatnet.yaml'));
const find = (kind: string) => { const d = flatnet().find((x) => x.kind === kind); assert.ok(d, `no ${kind}`); return d; };

test('every document of deploy/*.yaml validates against the official Kubernetes schemas, no unknown field', async () => {
  assert.ok(manifests.length > 0);
  for (const file of manifests) {
    const docs = loadDocs(file);
    assert.ok(docs.length > 0, `${file} has no document`);
    for (const doc of docs) assert.deepEqual(await problemsOf(doc), [], `${file}: ${doc.kind}/${doc.metadata?.name}`);
  }
  assert.deepEqual(flatnet().map((d) => d.kind), ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet']);
});

test('a broken copy fails: a typo\'d field, a wrong type, a missing required field, an unknown kind', async () => {
  const ds = find('DaemonSet');
  const typo = structuredClone(ds);
  typo.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
  typo.spec.template.spec.tolerationz = [];
  assert.deepEqual((await problemsOf(typo)).sort(), [
    '/spec/template/spec/containers/0/imagePullPolicyy: unknown field "imagePullPolicyy"',
    '/spec/template/spec/tolerationz: unknown field "tolerationz"',
  ]);
  const wrongType = structuredClone(ds);
  wrongType.spec.template.spec.hostNetwork = 'yes';
  assert.match((await problemsOf(wrongType)).join('\n'), /\/spec\/template\/spec\/hostNetwork: must be boolean/);
  const noName = structuredClone(ds);
  delete noName.spec.template.spec.containers[0].name;
  assert.match((await problemsOf(noName)).join('\n'), /\/spec\/template\/spec\/containers\/0: must have required property 'name'/);
  const badMeta = structuredClone(find('Namespace'));
  badMeta.metadata.lables = badMeta.metadata.labels;
  assert.deepEqual(await problemsOf(badMeta), ['/metadata/lables: unknown field "lables"']);
  await assert.rejects(problemsOf({ ...ds, kind: 'DeamonSet' }), /no official schema for apps\/v1 DeamonSet/);
});

test('the ClusterRole grants reads of what the agent follows and a patch of nodes/status, nothing more', () => {
  const grants = find('ClusterRole').rules.flatMap((r: Obj) => r.apiGroups.flatMap((g: string) => r.resources.flatMap((res: string) =>
    r.verbs.map((v: string) => `${g || 'core'}/${res}:${v}`))));
  const reads = ['core/nodes', 'core/namespaces', 'core/pods', 'core/services', 'discovery.k8s.io/endpointslices', 'networking.k8s.io/networkpolicies']
    .flatMap((r) => ['get', 'list', 'watch'].map((v) => `${r}:${v}`));
  assert.deepEqual(grants.sort(), [...reads, 'core/nodes/status:patch'].sort());
  const binding = find('ClusterRoleBinding');
  const sa = find('ServiceAccount');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  assert.equal(binding.roleRef.name, find('ClusterRole').metadata.name);
});

test('the DaemonSet: every node, host network, NET_ADMIN and SYS_ADMIN only, probes on the agent\'s health port', () => {
  const ds = find('DaemonSet');
  const pod = ds.spec.template.spec;
  assert.equal(ds.metadata.namespace, 'flatnet-system');
  assert.equal(pod.serviceAccountName, find('ServiceAccount').metadata.name);
  assert.equal(pod.hostNetwork, true);
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  const agent = pod.containers[0];
  assert.equal(agent.securityContext.privileged, false);
  assert.deepEqual(agent.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'SYS_ADMIN'] });
  assert.deepEqual([agent.livenessProbe.httpGet, agent.readinessProbe.httpGet], [
    { host: '127.0.0.1', path: '/healthz', port: 9470 }, { host: '127.0.0.1', path: '/readyz', port: 9470 }]);
  assert.ok(agent.args.includes('--health-listen=127.0.0.1:9470'));
  const init = pod.initContainers[0];
  assert.deepEqual(init.command.slice(-3), ['install-cni', '--root', '/host']);
  assert.deepEqual(init.securityContext.capabilities, { drop: ['ALL'] });
  // The init container's mounts are exactly the install step's target directories below its root.
  const hostPathOf = (name: string) => pod.volumes.find((v: Obj) => v.name === name).hostPath.path;
  const mounts = Object.fromEntries(init.volumeMounts.map((m: Obj) => [m.mountPath, hostPathOf(m.name)]));
  assert.deepEqual(mounts, { [`/host/${BIN_DIR}`]: `/${BIN_DIR}`, [`/host/${CONF_DIR}`]: `/${CONF_DIR}` });
});

test('the ConfigMap holds a cluster config the agent parses: 10.244.0.0/16, backend auto, an MTU', () => {
  const conf = JSON.parse(find('ConfigMap').data['net-conf.json']);
  const parsed = parseClusterConfig(JSON.stringify(conf));
  assert.deepEqual(parsed.clusterCIDRs, ['10.244.0.0/16']);
  assert.equal(parsed.backend, 'auto');
  assert.equal(typeof conf.mtu, 'number');
});

test('deploy/Dockerfile parses: known instructions, named stages, node:20 then node:20-slim with the tools', () => {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  // Continuation lines join; comment lines vanish, also inside a continuation (Docker's own rule).
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim());
  const known = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);
  const stages: string[] = [];
  const bases: string[] = [];
  for (const l of lines) {
    const [ins, ...rest] = l.trim().split(/\s+/);
    assert.ok(known.has(ins), `unknown instruction "${ins}" in: ${l}`);
    if (ins === 'FROM') { bases.push(rest[0]); stages.push(rest[2] ?? ''); assert.ok(rest.length === 1 || rest[1].toUpperCase() === 'AS', l); }
    if (ins === 'COPY' || ins === 'ADD') {
      const from = rest.find((a) => a.startsWith('--from='))?.slice(7);
      if (from) assert.ok(stages.slice(0, -1).includes(from), `COPY --from=${from}: no earlier stage of that name`);
      else for (const src of rest.filter((a) => !a.startsWith('--')).slice(0, -1)) assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: not in the repository`);
    }
    if (ins === 'ENTRYPOINT' || ins === 'CMD') assert.doesNotThrow(() => JSON.parse(rest.join(' ')), `${ins} in exec form`);
  }
  assert.deepEqual(bases, ['node:20', 'node:20-slim']);
  const runtime = lines.slice(lines.findIndex((l) => l.startsWith('FROM node:20-slim'))).join('\n');
  for (const pkg of ['iproute2', 'nftables', 'conntrack']) assert.match(runtime, new RegExp(`apt-get install [^\\n]*\\b${pkg}\\b`));
  // The DaemonSet runs the path the image puts flatnet at.
  const entry = JSON.parse(lines.find((l) => l.startsWith('ENTRYPOINT'))!.slice('ENTRYPOINT'.length));
  assert.deepEqual(find('DaemonSet').spec.template.spec.containers[0].command.slice(0, 2), entry);
});

test('deploy/flatnet-controller.yaml: nodes get/list/watch/patch only, one Recreate replica, the DaemonSet\'s image and config', () => {
  const docs = loadDocs(join(DEPLOY, 'flatnet-controller.yaml'));
  const of = (kind: string) => { const d = docs.find((x) => x.kind === kind); assert.ok(d, `no ${kind}`); return d; };
  assert.deepEqual(docs.map((d) => d.kind), ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Deployment']);
  assert.deepEqual(of('ClusterRole').rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] }]);
  const sa = of('ServiceAccount');
  assert.deepEqual(of('ClusterRoleBinding').subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  assert.equal(of('ClusterRoleBinding').roleRef.name, of('ClusterRole').metadata.name);
  const dep = of('Deployment');
  assert.deepEqual([dep.spec.replicas, dep.spec.strategy.type], [1, 'Recreate']);
  const pod = dep.spec.template.spec;
  assert.equal(pod.serviceAccountName, sa.metadata.name);
  const agentPod = find('DaemonSet').spec.template.spec;
  assert.equal(pod.containers[0].image, agentPod.containers[0].image);
  assert.deepEqual(pod.containers[0].command, [...agentPod.containers[0].command.slice(0, -1), 'controller']);
  assert.deepEqual(pod.containers[0].args, ['--datastore=kubernetes', '--config=/etc/flatnet/net-conf.json']);
  assert.equal(pod.volumes[0].configMap.name, find('ConfigMap').metadata.name);
  assert.equal(dep.metadata.namespace, find('Namespace').metadata.name);
});
