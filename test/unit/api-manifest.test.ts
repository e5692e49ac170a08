// Manifests: a good multi-document file parses to normalized objects; every class of mistake is refused
// with a message that names the file, the document, the object and the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManifestError, parseManifests } from '../../src/api/manifest.js';

const GOOD = `# leading comment
apiVersion: v1
kind: Namespace
metadata: { name: demo, labels: { team: net } }
---
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: demo }
spec:
  selector: { matchLabels: { app: web } }
  strategy: { type: RollingUpdate }
  template:
    metadata: { labels: { app: web, tier: front } }
    spec:
      restartPolicy: Always
      containers:
        - name: web
          image: busybox
          imagePullPolicy: IfNotPresent
          command: [flatnet, serve, --port, "8080"]
          ports: [{ containerPort: 8080, name: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: duo, annotations: { example.com/note: "two containers" } }
spec:
  hostNetwork: false
  nodeName: node-1
  nodeSelector: { kubernetes.io/hostname: node-1 }
  containers:
    - { name: a, args: [x, y], ports: [{ containerPort: 53, protocol: UDP }] }
    - { name: b }
`;

test('a good multi-document file parses to normalized objects', () => {
  const objects = parseManifests(GOOD, 'good.yaml');
  assert.deepEqual(objects, [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo', labels: { team: 'net' } } },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'demo' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web', tier: 'front' } },
          spec: { containers: [{ name: 'web', image: 'busybox', command: ['flatnet', 'serve', '--port', '8080'], ports: [{ containerPort: 8080, protocol: 'TCP', name: 'http' }] }] },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'duo', namespace: 'default', annotations: { 'example.com/note': 'two containers' } },
      spec: {
        containers: [{ name: 'a', args: ['x', 'y'], ports: [{ containerPort: 53, protocol: 'UDP' }] }, { name: 'b' }],
        nodeName: 'node-1',
        nodeSelector: { 'kubernetes.io/hostname': 'node-1' },
      },
    },
  ]);
});

test('an empty file and comment-only documents give nothing', () => {
  assert.deepEqual(parseManifests('', 'empty.yaml'), []);
  assert.deepEqual(parseManifests('# nothing\n---\n---\n', 'empty.yaml'), []);
});

test('a List is expanded into its items; an error in an item names it', () => {
  const list = `apiVersion: v1
kind: List
items:
  - { apiVersion: v1, kind: Namespace, metadata: { name: a } }
  - { apiVersion: v1, kind: Pod, metadata: { name: p, namespace: a }, spec: { containers: [{ name: c }] } }
`;
  const objects = parseManifests(list, 'list.yaml');
  assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/a', 'Pod/p']);
  assert.throws(() => parseManifests(list.replace('name: c', 'name: C'), 'list.yaml'),
    { name: 'ManifestError', message: 'list.yaml: document 1, items[1] (Pod "p"): spec.containers[0].name: "C" is not a DNS-1123 label (at most 63 lowercase letters, digits and \'-\', starting and ending with a letter or digit)' });
});

/** A pod in document 2 of pods.yaml, with `spec` as given. */
const pod = (spec: string, meta = '{ name: web }') => `apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n---\napiVersion: v1\nkind: Pod\nmetadata: ${meta}\nspec: ${spec}\n`;
const refuses = (text: string, message: string | RegExp) =>
  assert.throws(() => parseManifests(text, 'pods.yaml'), (e: Error) => {
    assert.ok(e instanceof ManifestError, `a ManifestError, got ${e}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });

test('ports: out of range, wrong protocol, SCTP', () => {
  refuses(pod('{ containers: [{ name: c, ports: [{ containerPort: 70000 }] }] }'),
    'pods.yaml: document 2 (Pod "web"): spec.containers[0].ports[0].containerPort: 70000 is not a port (1-65535)');
  refuses(pod('{ containers: [{ name: c, ports: [{ containerPort: "80" }] }] }'),
    'pods.yaml: document 2 (Pod "web"): spec.containers[0].ports[0].containerPort: "80" is not a port (1-65535)');
  refuses(pod('{ containers: [{ name: c, ports: [{ containerPort: 80, protocol: SCTP }] }] }'),
    /^pods\.yaml: document 2 \(Pod "web"\): spec\.containers\[0\]\.ports\[0\]\.protocol: "SCTP" is not supported: this kernel has no SCTP/);
  refuses(pod('{ containers: [{ name: c, ports: [{ containerPort: 80, protocol: tcp }] }] }'),
    'pods.yaml: document 2 (Pod "web"): spec.containers[0].ports[0].protocol: "tcp" is not a protocol (TCP or UDP)');
});

test('apiVersion and kind: unknown pairs, Node, missing kind', () => {
  refuses('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: s }\n',
    'pods.yaml: document 1 (ConfigMap "s"): kind: kind "ConfigMap" (apiVersion "v1") is not supported: flatnet knows v1 Namespace, v1 Pod, v1 Service, apps/v1 Deployment and networking.k8s.io/v1 NetworkPolicy');
  refuses('apiVersion: apps/v1\nkind: Service\nmetadata: { name: s }\n', 'pods.yaml: document 1 (Service "s"): apiVersion: "apps/v1": Service is apiVersion v1');
  refuses('apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: s }\n', /EndpointSlice cannot be applied: the controller keeps them/);
  refuses('apiVersion: v1\nkind: Deployment\nmetadata: { name: d }\n', 'pods.yaml: document 1 (Deployment "d"): apiVersion: "v1": Deployment is apiVersion apps/v1');
  refuses('apiVersion: v1\nkind: Node\nmetadata: { name: node-1 }\n', /^pods\.yaml: document 1 \(Node "node-1"\): kind: a Node cannot be applied: nodes register themselves/);
  refuses('apiVersion: v1\nmetadata: { name: x }\n', 'pods.yaml: document 1: kind: is required');
  refuses('- a\n- b\n', 'pods.yaml: document 1: expected an object with apiVersion and kind, got a list');
  refuses('a: [\n', /^pods\.yaml: document 1: invalid YAML: /);
});

test('metadata: names, namespaces, labels', () => {
  refuses(pod('{ containers: [{ name: c }] }', '{ name: Web }'), /^pods\.yaml: document 2 \(Pod "Web"\): metadata\.name: "Web" is not a DNS-1123 subdomain/);
  refuses(pod('{ containers: [{ name: c }] }', '{ namespace: demo }'), 'pods.yaml: document 2 (Pod): metadata.name: is required');
  refuses('apiVersion: v1\nkind: Namespace\nmetadata: { name: a.b }\n', /^pods\.yaml: document 1 \(Namespace "a\.b"\): metadata\.name: "a\.b" is not a DNS-1123 label/);
  refuses('apiVersion: v1\nkind: Namespace\nmetadata: { name: a, namespace: b }\n', 'pods.yaml: document 1 (Namespace "a"): metadata.namespace: "b": a Namespace is cluster-scoped and has no namespace');
  refuses(pod('{ containers: [{ name: c }] }', '{ name: web, labels: { version: 1 } }'), 'pods.yaml: document 2 (Pod "web"): metadata.labels.version: 1 is not a string (quote it: "1")');
  refuses(pod('{ containers: [{ name: c }] }', '{ name: web, labels: { "bad key!": x } }'), /^pods\.yaml: document 2 \(Pod "web"\): metadata\.labels: key "bad key!" is not a valid key/);
  refuses(pod('{ containers: [{ name: c }] }', '{ name: web, labels: { app: "-x" } }'), /^pods\.yaml: document 2 \(Pod "web"\): metadata\.labels\.app: "-x" is not a valid label value/);
});

test('pod spec: containers, names, command, hostNetwork, nodeName, nodeSelector, unknown fields', () => {
  refuses(pod('{ containers: [] }'), /^pods\.yaml: document 2 \(Pod "web"\): spec\.containers: \[\]: a pod needs a non-empty list of containers/);
  refuses(pod('{ nodeName: n }'), /^pods\.yaml: document 2 \(Pod "web"\): spec\.containers: is required/);
  refuses(pod('{ containers: [{ name: c }, { name: c }] }'), 'pods.yaml: document 2 (Pod "web"): spec.containers[1].name: "c" is used by another container of this pod');
  refuses(pod('{ containers: [{ name: c, command: [serve, 8080] }] }'), 'pods.yaml: document 2 (Pod "web"): spec.containers[0].command[1]: 8080 is not a string (quote it: "8080")');
  refuses(pod('{ containers: [{ name: c, args: x }] }'), 'pods.yaml: document 2 (Pod "web"): spec.containers[0].args: "x" is not a list of strings');
  refuses(pod('{ hostNetwork: "yes", containers: [{ name: c }] }'), 'pods.yaml: document 2 (Pod "web"): spec.hostNetwork: "yes" is not a boolean (true or false)');
  refuses(pod('{ nodeName: 3, containers: [{ name: c }] }'), 'pods.yaml: document 2 (Pod "web"): spec.nodeName: 3 is not a string (quote it: "3")');
  refuses(pod('{ nodeSelector: [a], containers: [{ name: c }] }'), 'pods.yaml: document 2 (Pod "web"): spec.nodeSelector: ["a"] is not a mapping');
  refuses(pod('{ contianers: [{ name: c }] }'), /^pods\.yaml: document 2 \(Pod "web"\): spec\.contianers: field is not supported by flatnet \(it reads containers, nodeName, hostNetwork, nodeSelector, terminationGracePeriodSeconds, securityContext\)/);
  refuses(pod('{ containers: [{ name: c, env: [] }] }'), /^pods\.yaml: document 2 \(Pod "web"\): spec\.containers\[0\]\.env: field is not supported by flatnet/);
});

test('deployment: replicas, selector, template labels', () => {
  const dep = (spec: string) => `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: ${spec}\n`;
  const template = 'template: { metadata: { labels: { app: web } }, spec: { containers: [{ name: c }] } }';
  assert.equal((parseManifests(dep(`{ replicas: 0, selector: { matchLabels: { app: web } }, ${template} }`), 'd.yaml')[0] as { spec: { replicas: number } }).spec.replicas, 0);
  refuses(dep(`{ replicas: -1, selector: { matchLabels: { app: web } }, ${template} }`), 'pods.yaml: document 1 (Deployment "web"): spec.replicas: -1 is not a whole number from 0 to 2147483647');
  refuses(dep(`{ replicas: 1.5, selector: { matchLabels: { app: web } }, ${template} }`), 'pods.yaml: document 1 (Deployment "web"): spec.replicas: 1.5 is not a whole number from 0 to 2147483647');
  refuses(dep(`{ selector: { matchLabels: {} }, ${template} }`), /^pods\.yaml: document 1 \(Deployment "web"\): spec\.selector\.matchLabels: is empty/);
  refuses(dep(`{ ${template} }`), 'pods.yaml: document 1 (Deployment "web"): spec.selector: is required');
  refuses(dep(`{ selector: { matchLabels: { app: api } }, ${template} }`),
    'pods.yaml: document 1 (Deployment "web"): spec.template.metadata.labels: {"app":"web"} does not match spec.selector.matchLabels {"app":"api"} (app: "api" is "web")');
  refuses(dep('{ selector: { matchLabels: { app: web } }, template: { metadata: { labels: { app: web } }, spec: { containers: [{ name: c, ports: [{ containerPort: 0 }] }] } } }'),
    'pods.yaml: document 1 (Deployment "web"): spec.template.spec.containers[0].ports[0].containerPort: 0 is not a port (1-65535)');
});

test('Kubernetes\' limits: name lengths, Service names, annotations size, a Deployment name its pods\' names fit', () => {
  const long = (n: number) => 'a'.repeat(n);
  refuses(pod('{ containers: [{ name: c }] }', `{ name: ${long(254)} }`), /^pods\.yaml: document 2 \(Pod "a+"\): metadata\.name: "a+\.\.\. is not a DNS-1123 subdomain .* \(it is 254 characters\)$/);
  assert.equal(parseManifests(pod('{ containers: [{ name: c }] }', `{ name: ${long(253)} }`), 'p.yaml')[1].metadata.name.length, 253);
  refuses(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${long(64)} }\n`, /metadata\.name: "a+\.\.\. is not a DNS-1123 label .* \(it is 64 characters\)$/);
  const svc = (name: string) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name} }\nspec: { ports: [{ port: 80 }] }\n`;
  refuses(svc('1web'), /^pods\.yaml: document 1 \(Service "1web"\): metadata\.name: "1web" is not a DNS-1035 label/);
  refuses(svc('a.b'), /metadata\.name: "a\.b" is not a DNS-1035 label/);
  refuses(svc(long(64)), /is not a DNS-1035 label .* \(it is 64 characters\)$/);

  const big = 'x'.repeat(128 * 1024);
  refuses(pod('{ containers: [{ name: c }] }', `{ name: web, annotations: { a: ${big}, b: ${big} } }`),
    'pods.yaml: document 2 (Pod "web"): metadata.annotations: are 262146 bytes in total; the limit is 262144 (256 KiB)');
  assert.ok(parseManifests(pod('{ containers: [{ name: c }] }', `{ name: web, annotations: { a: ${big}, b: ${big.slice(2)} } }`), 'p.yaml'));

  const dep = (name: string, replicas = 1, containers = 1, annotations = '') => `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: ${name} }\nspec: { replicas: ${replicas}, selector: { matchLabels: { app: w } }, template: { metadata: { labels: { app: w }${annotations} }, spec: { containers: [${Array.from({ length: containers }, (_, i) => `{ name: c${i} }`).join(', ')}] } } }\n`;
  assert.ok(parseManifests(dep(long(57)), 'd.yaml'));
  refuses(dep(long(58)), /^pods\.yaml: document 1 \(Deployment "a+"\): metadata\.name: "a+" is 58 characters; a Deployment's name may have at most 57, so that its pods' names \("<name>-xxxxx"\) fit a 63-character DNS label$/);
  refuses(dep('web', 1, 1, `, annotations: { a: ${big}, b: ${big} }`), /spec\.template\.metadata\.annotations: are 262146 bytes in total/);

  // What the lab cannot run is refused with the reason.
  refuses(dep('web', 1_000_000_000), 'pods.yaml: document 1 (Deployment "web"): spec.replicas: 1000000000: the lab runs at most 10000 replicas per Deployment (every pod is a stored object and processes on this one machine)');
  refuses(dep('web', 2 ** 31), /spec\.replicas: 2147483648 is not a whole number from 0 to 2147483647/);
  assert.ok(parseManifests(dep('web', 10_000, 64), 'd.yaml'));
  refuses(dep('web', 1, 65), 'pods.yaml: document 1 (Deployment "web"): spec.template.spec.containers: 65 containers: the lab runs at most 64 per pod (each is processes on this one machine)');
  refuses(pod(`{ containers: [${Array.from({ length: 10_000 }, (_, i) => `{ name: c${i} }`).join(', ')}] }`),
    'pods.yaml: document 2 (Pod "web"): spec.containers: 10000 containers: the lab runs at most 64 per pod (each is processes on this one machine)');
});
