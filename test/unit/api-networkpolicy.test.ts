// NetworkPolicy in the API layer: every refusal the API server makes (field and value named), its
// defaults, apply/update/delete on the memory store, `get` lines and YAML, and the namespace name label.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/store/memory.js';
import { applyObjects, ApplyError, deleteObjects, listObjects } from '../../src/api/apply.js';
import { ManifestError, parseManifests } from '../../src/api/manifest.js';
import { formatTable, formatYaml, selectorText } from '../../src/api/format.js';
import { objectKey } from '../../src/api/keys.js';
import { resourceKind } from '../../src/cli/cluster-commands.js';
import { NAMESPACE_NAME_LABEL, type Namespace, type NetworkPolicy } from '../../src/api/types.js';

const PLACE = 'policy.yaml: document 1 (NetworkPolicy "web"): ';
const np = (spec: string, meta = '{ name: web, namespace: demo }') =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: ${meta}\nspec: ${spec}\n`;
const parseOne = (text: string): NetworkPolicy => parseManifests(text, 'policy.yaml')[0] as NetworkPolicy;
/** The spec refused with exactly this message after the place (or matching a pattern). */
const refuses = (spec: string, message: string | RegExp, meta?: string) =>
  assert.throws(() => parseManifests(np(spec, meta), 'policy.yaml'), (e: Error) => {
    assert.ok(e instanceof ManifestError, `a ManifestError, got ${e}`);
    if (typeof message === 'string') assert.equal(e.message, `${PLACE}${message}`);
    else assert.match(e.message, message);
    return true;
  });
const ingressPort = (port: string) => `{ podSelector: {}, ingress: [{ ports: [${port}] }] }`;
const fromPeer = (peer: string) => `{ podSelector: {}, ingress: [{ from: [${peer}] }] }`;
const CIDR_HELP = 'is not a valid CIDR (an IPv4 or IPv6 address, "/" and a prefix length, e.g. "10.0.0.0/16" or "fd00::/64")';
const PORT_NAME_HELP = 'is not a port name (at most 15 lowercase letters, digits and \'-\', with a letter, no "--")';

test('ports: endPort without port, below port, with a named port; out of range; protocol', () => {
  refuses(ingressPort('{ endPort: 90 }'), 'spec.ingress[0].ports[0].endPort: 90 may not be specified when port is not specified');
  refuses('{ podSelector: {}, egress: [{ ports: [{ port: 80, endPort: 79 }] }] }', 'spec.egress[0].ports[0].endPort: 79 must be greater than or equal to port (80)');
  refuses(ingressPort('{ port: http, endPort: 90 }'), 'spec.ingress[0].ports[0].endPort: 90 may not be specified when port is non-numeric ("http")');
  refuses(ingressPort('{ port: 80, endPort: 70000 }'), 'spec.ingress[0].ports[0].endPort: 70000 is not a port (1-65535)');
  refuses(ingressPort('{ port: 80, endPort: "90" }'), 'spec.ingress[0].ports[0].endPort: "90" is not a port number');
  refuses(ingressPort('{ port: 70000 }'), 'spec.ingress[0].ports[0].port: 70000 is not a port (1-65535)');
  refuses(ingressPort('{ port: 0 }'), 'spec.ingress[0].ports[0].port: 0 is not a port (1-65535)');
  refuses(ingressPort('{ port: 80.5 }'), 'spec.ingress[0].ports[0].port: 80.5 is not a port (1-65535)');
  refuses(ingressPort('{ port: 80, protocol: ICMP }'), 'spec.ingress[0].ports[0].protocol: "ICMP" is not supported: must be one of TCP, UDP, SCTP');
  refuses(ingressPort('{ port: 80, protocol: tcp }'), 'spec.ingress[0].ports[0].protocol: "tcp" is not supported: must be one of TCP, UDP, SCTP');
  refuses(ingressPort('{ port: 80, proto: TCP }'), 'spec.ingress[0].ports[0].proto: field is not supported by flatnet (it reads protocol, port, endPort)');
  // endPort equal to port is a range of one; SCTP is accepted in the API.
  assert.deepEqual(parseOne(np(ingressPort('{ port: 80, endPort: 80, protocol: SCTP }'))).spec.ingress, [{ ports: [{ protocol: 'SCTP', port: 80, endPort: 80 }] }]);
});

test('ports: names follow IANA_SVC_NAME; a quoted number is a name, and no valid one', () => {
  for (const bad of ['HTTP', '-web', 'web-', 'a--b', 'sixteen-chars-xx', '1234-5678', 'we_b']) {
    refuses(ingressPort(`{ port: "${bad}" }`), `spec.ingress[0].ports[0].port: "${bad}" ${PORT_NAME_HELP}`);
  }
  refuses(ingressPort('{ port: "80" }'), 'spec.ingress[0].ports[0].port: "80" is not a port name (a name needs a letter; write the number without quotes)');
  refuses(ingressPort('{ port: true }'), 'spec.ingress[0].ports[0].port: true is not a port number or name');
  assert.deepEqual(parseOne(np(ingressPort('{ port: serve-80-tcp }, { port: 9a, protocol: UDP }'))).spec.ingress![0].ports,
    [{ protocol: 'TCP', port: 'serve-80-tcp' }, { protocol: 'UDP', port: '9a' }]);
});

test('ipBlock: cidr must be a CIDR; except strictly inside its cidr and of its family; host bits kept as written', () => {
  for (const bad of ['10.0.0.0/33', '10.0.0.256/8', '10.0.0.0', '010.0.0.0/8', '10.0.0.0/08', 'fd00::/129', 'fd00::1%eth0/64', 'web/8', '10.0.0.0/-1']) {
    refuses(fromPeer(`{ ipBlock: { cidr: "${bad}" } }`), `spec.ingress[0].from[0].ipBlock.cidr: "${bad}" ${CIDR_HELP}`);
  }
  refuses(fromPeer('{ ipBlock: { cidr: "" } }'), 'spec.ingress[0].from[0].ipBlock.cidr: is required');
  refuses(fromPeer('{ ipBlock: { except: [10.0.0.0/8] } }'), 'spec.ingress[0].from[0].ipBlock.cidr: is required');
  refuses(fromPeer('{ ipBlock: { cidr: 10.0.0.0/16, except: [10.0.0.0/33] } }'), `spec.ingress[0].from[0].ipBlock.except[0]: "10.0.0.0/33" ${CIDR_HELP}`);
  const outside = (except: string, why = '') => refuses(`{ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: 10.0.0.0/16, except: [10.0.1.0/24, "${except}"] } }] }] }`,
    `spec.egress[0].to[0].ipBlock.except[1]: "${except}" must be a strict subset of cidr "10.0.0.0/16"${why}`);
  outside('10.1.0.0/24');          // beside it
  outside('10.0.0.0/16');          // the cidr itself: not strictly inside
  outside('10.0.0.0/8');           // around it
  outside('10.0.0.0/15');
  outside('fd00::/64', ' (it is IPv6, the cidr IPv4)');
  refuses(fromPeer('{ ipBlock: { cidr: "fd00::/48", except: [10.0.0.0/8] } }'),
    'spec.ingress[0].from[0].ipBlock.except[0]: "10.0.0.0/8" must be a strict subset of cidr "fd00::/48" (it is IPv4, the cidr IPv6)');
  refuses(fromPeer('{ ipBlock: { cidr: 10.0.0.0/8, exclude: [] } }'), 'spec.ingress[0].from[0].ipBlock.exclude: field is not supported by flatnet (it reads cidr, except)');

  // Host bits: the cidr and an except are kept as written (the API server keeps them; the dataplane takes the network).
  const p = parseOne(np(fromPeer('{ ipBlock: { cidr: 10.0.5.1/16, except: [10.0.1.9/24] } }, { ipBlock: { cidr: "fd00::1/48", except: ["fd00:0:0:1::/64"] } }, { ipBlock: { cidr: 0.0.0.0/0 } }')));
  assert.deepEqual(p.spec.ingress![0].from, [
    { ipBlock: { cidr: '10.0.5.1/16', except: ['10.0.1.9/24'] } },
    { ipBlock: { cidr: 'fd00::1/48', except: ['fd00:0:0:1::/64'] } },
    { ipBlock: { cidr: '0.0.0.0/0' } },
  ]);
});

test('peers: one of the three; ipBlock never with a selector; both selectors together are fine', () => {
  refuses(fromPeer('{}'), 'spec.ingress[0].from[0]: {} must specify a peer (podSelector, namespaceSelector or ipBlock)');
  refuses(fromPeer('{ ipBlock: { cidr: 10.0.0.0/8 }, podSelector: {} }'),
    'spec.ingress[0].from[0]: may not specify both ipBlock and another peer (it has podSelector and ipBlock): write them as separate peers');
  refuses('{ podSelector: {}, egress: [{ to: [{ namespaceSelector: {}, ipBlock: { cidr: 10.0.0.0/8 } }] }] }',
    'spec.egress[0].to[0]: may not specify both ipBlock and another peer (it has namespaceSelector and ipBlock): write them as separate peers');
  refuses(fromPeer('{ podSelecter: {} }'), 'spec.ingress[0].from[0].podSelecter: field is not supported by flatnet (it reads podSelector, namespaceSelector, ipBlock)');
  refuses('{ podSelector: {}, ingress: [{ to: [] }] }', 'spec.ingress[0].to: field is not supported by flatnet (it reads ports, from)');
  refuses('{ podSelector: {}, egress: [{ from: [] }] }', 'spec.egress[0].from: field is not supported by flatnet (it reads ports, to)');
  const p = parseOne(np(fromPeer('{ podSelector: { matchLabels: { pod: a } }, namespaceSelector: { matchLabels: { ns: x } } }')));
  assert.deepEqual(p.spec.ingress![0].from, [{ podSelector: { matchLabels: { pod: 'a' } }, namespaceSelector: { matchLabels: { ns: 'x' } } }]);
});

test('selectors: operators, values, label keys and values, as ValidateLabelSelector', () => {
  const expr = (e: string) => `{ podSelector: { matchExpressions: [${e}] } }`;
  refuses(expr('{ key: app, operator: Equals, values: [a] }'), 'spec.podSelector.matchExpressions[0].operator: "Equals" is not a valid selector operator (In, NotIn, Exists or DoesNotExist)');
  refuses(expr('{ key: app, operator: in, values: [a] }'), 'spec.podSelector.matchExpressions[0].operator: "in" is not a valid selector operator (In, NotIn, Exists or DoesNotExist)');
  refuses(expr('{ key: app, values: [a] }'), 'spec.podSelector.matchExpressions[0].operator: is required (In, NotIn, Exists or DoesNotExist)');
  refuses(expr('{ key: app, operator: In }'), 'spec.podSelector.matchExpressions[0].values: is required (at least one value) when operator is "In"');
  refuses(expr('{ key: app, operator: NotIn, values: [] }'), 'spec.podSelector.matchExpressions[0].values: [] may not be empty when operator is "NotIn"');
  refuses(expr('{ key: app, operator: Exists, values: [a] }'), 'spec.podSelector.matchExpressions[0].values: ["a"] may not be specified when operator is "Exists"');
  refuses(expr('{ key: app, operator: DoesNotExist, values: [a, b] }'), 'spec.podSelector.matchExpressions[0].values: ["a","b"] may not be specified when operator is "DoesNotExist"');
  refuses(expr('{ operator: Exists }'), 'spec.podSelector.matchExpressions[0].key: is required');
  refuses(expr('{ key: "bad key", operator: Exists }'), /^policy\.yaml: document 1 \(NetworkPolicy "web"\): spec\.podSelector\.matchExpressions\[0\]\.key: "bad key" is not a valid key \(/);
  refuses(expr('{ key: app, operator: In, values: ["-x"] }'), /spec\.podSelector\.matchExpressions\[0\]\.values\[0\]: "-x" is not a valid label value \(/);
  refuses(expr('{ key: app, operator: In, values: [1] }'), 'spec.podSelector.matchExpressions[0].values[0]: 1 is not a string (quote it: "1")');
  refuses(expr('{ key: app, operator: In, value: [a] }'), 'spec.podSelector.matchExpressions[0].value: field is not supported by flatnet (it reads key, operator, values)');
  refuses('{ podSelector: { matchLabels: { "-app": web } } }', /spec\.podSelector\.matchLabels: key "-app" is not a valid key \(/);
  refuses('{ podSelector: { matchLabels: { app: "a b" } } }', /spec\.podSelector\.matchLabels\.app: "a b" is not a valid label value \(/);
  refuses(fromPeer('{ namespaceSelector: { matchExpressions: [{ key: team, operator: Exists, values: [x] }] } }'),
    'spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: ["x"] may not be specified when operator is "Exists"');
  refuses('{ podSelector: { app: web } }', 'spec.podSelector.app: field is not supported by flatnet (it reads matchLabels, matchExpressions)');
  // Exists with `values: []` is accepted (no values), and stored without them.
  assert.deepEqual(parseOne(np(expr('{ key: app, operator: Exists, values: [] }, { key: tier, operator: In, values: [a, b] }'))).spec.podSelector,
    { matchExpressions: [{ key: 'app', operator: 'Exists' }, { key: 'tier', operator: 'In', values: ['a', 'b'] }] });
});

test('policyTypes, names and kinds', () => {
  refuses('{ podSelector: {}, policyTypes: [Both] }', 'spec.policyTypes[0]: "Both" is not supported: must be Ingress or Egress');
  refuses('{ podSelector: {}, policyTypes: [Ingress, ingress] }', 'spec.policyTypes[1]: "ingress" is not supported: must be Ingress or Egress');
  refuses('{ podSelector: {}, policyTypes: [Ingress, Egress, Ingress] }', 'spec.policyTypes: ["Ingress","Egress","Ingress"] may not specify more than two policyTypes');
  refuses('{ podSelector: {}, policyTypes: Ingress }', 'spec.policyTypes: "Ingress" is not a list');
  refuses('{ podSelector: {}, ingres: [] }', 'spec.ingres: field is not supported by flatnet (it reads podSelector, policyTypes, ingress, egress)');
  assert.throws(() => parseManifests(np('{}', '{ name: Web, namespace: demo }'), 'policy.yaml'),
    { message: 'policy.yaml: document 1 (NetworkPolicy "Web"): metadata.name: "Web" is not a DNS-1123 subdomain (at most 253 lowercase letters, digits, \'-\' and \'.\', each part starting and ending with a letter or digit)' });
  assert.throws(() => parseManifests(np('{}').replace('networking.k8s.io/v1', 'networking.k8s.io/v1beta1'), 'policy.yaml'),
    { message: `${PLACE}apiVersion: "networking.k8s.io/v1beta1": NetworkPolicy is apiVersion networking.k8s.io/v1` });
  assert.equal(parseOne(np('{}', '{ name: allow.web }')).metadata.namespace, 'default');
});

test('defaults as the API server sets them: protocol TCP; policyTypes [Ingress], plus Egress when egress rules are given', () => {
  const types = (spec: string) => parseOne(np(spec)).spec.policyTypes;
  assert.deepEqual(types('{ podSelector: {} }'), ['Ingress']);
  assert.deepEqual(types('{ podSelector: {}, ingress: [{}] }'), ['Ingress']);
  assert.deepEqual(types('{ podSelector: {}, egress: [{}] }'), ['Ingress', 'Egress']);
  assert.deepEqual(types('{ podSelector: {}, egress: [] }'), ['Ingress'], 'an empty egress list is no egress rules');
  assert.deepEqual(types('{ podSelector: {}, egress: [{}], policyTypes: [] }'), ['Ingress', 'Egress'], 'an empty list is defaulted too');
  assert.deepEqual(types('{ podSelector: {}, egress: [{}], policyTypes: [Egress] }'), ['Egress'], 'given types are kept');
  assert.deepEqual(types('{ podSelector: {}, policyTypes: [Egress, Ingress] }'), ['Egress', 'Ingress']);

  // No spec at all: the empty selector (every pod of the namespace), isolated for ingress.
  assert.deepEqual(parseOne(np('{}').replace('spec: {}\n', '')).spec, { podSelector: {}, policyTypes: ['Ingress'] });
  // Empty lists and maps are left out as the API server leaves them out; every port gets its protocol.
  const p = parseOne(np(`
  podSelector: { matchLabels: {}, matchExpressions: [] }
  ingress:
  - { from: [], ports: [] }
  - ports: [{}, { port: 80 }, { protocol: UDP, port: 53 }, { port: 8000, endPort: 8080 }]
    from: [{ podSelector: {} }, { namespaceSelector: { matchLabels: { team: a } }, podSelector: { matchExpressions: [{ key: app, operator: NotIn, values: [x] }] } }]
  egress:
  - to: [{ ipBlock: { cidr: 10.0.0.0/8, except: [] } }]
`));
  assert.deepEqual(p.spec, {
    podSelector: {},
    ingress: [
      {},
      {
        ports: [{ protocol: 'TCP' }, { protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 8000, endPort: 8080 }],
        from: [{ podSelector: {} }, { podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['x'] }] }, namespaceSelector: { matchLabels: { team: 'a' } } }],
      },
    ],
    egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }],
    policyTypes: ['Ingress', 'Egress'],
  });
});

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: demo }\n';
const POLICY = np('{ podSelector: { matchLabels: { app: web } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: client } } }], ports: [{ port: 80 }] }] }');
const parse = (...docs: string[]) => parseManifests(docs.join('---\n'), 'policy.yaml');

async function cluster(): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.put(objectKey('Namespace', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: { [NAMESPACE_NAME_LABEL]: 'default' } }, status: { phase: 'Active' } }));
  return store;
}

async function read<T>(store: MemoryStore, key: string): Promise<T | undefined> {
  const kv = await store.get(key);
  return kv ? (JSON.parse(kv.value) as T) : undefined;
}

test('apply creates, reports unchanged, then configured on a spec or label change; delete and NotFound as kubectl', async () => {
  const store = await cluster();
  await assert.rejects(applyObjects(store, parse(POLICY)), (e: Error) => e instanceof ApplyError && /NetworkPolicy "demo\/web": namespace "demo" not found/.test(e.message));
  assert.deepEqual((await applyObjects(store, parse(NS, POLICY))).map((r) => r.line), ['namespace/demo created', 'networkpolicy.networking.k8s.io/web created']);
  const key = objectKey('NetworkPolicy', 'web', 'demo');
  const created = (await read<NetworkPolicy>(store, key))!;
  assert.equal(key, '/registry/networkpolicies/demo/web');
  assert.match(created.metadata.uid!, /^[0-9a-f-]{36}$/);
  assert.match(created.metadata.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(created.spec.policyTypes, ['Ingress']);

  const rev = store.revision;
  assert.deepEqual((await applyObjects(store, parse(POLICY))).map((r) => r.line), ['networkpolicy.networking.k8s.io/web unchanged']);
  assert.equal(store.revision, rev, 'nothing written');

  const changed = POLICY.replace('port: 80', 'port: 8080').replace('{ name: web, namespace: demo }', '{ name: web, namespace: demo, labels: { tier: a } }');
  assert.deepEqual((await applyObjects(store, parse(changed))).map((r) => r.line), ['networkpolicy.networking.k8s.io/web configured']);
  const after = (await read<NetworkPolicy>(store, key))!;
  assert.equal(after.metadata.uid, created.metadata.uid);
  assert.equal(after.metadata.creationTimestamp, created.metadata.creationTimestamp);
  assert.deepEqual(after.metadata.labels, { tier: 'a' });
  assert.deepEqual(after.spec.ingress![0].ports, [{ protocol: 'TCP', port: 8080 }]);

  const deleted = await deleteObjects(store, parse(POLICY));
  assert.deepEqual(deleted.map((r) => r.line), ['networkpolicy.networking.k8s.io "web" deleted']);
  assert.equal(await read(store, key), undefined);
  const missing = await deleteObjects(store, parse(POLICY));
  assert.deepEqual(missing.map((r) => [r.notFound, r.line]), [[true, 'Error from server (NotFound): networkpolicies.networking.k8s.io "web" not found']]);
  await store.close();
});

test('deleting a namespace deletes its policies, and only its own', async () => {
  const store = await cluster();
  const other = np('{}', '{ name: keep, namespace: default }');
  await applyObjects(store, parse(NS, POLICY, np('{}', '{ name: deny, namespace: demo }'), other));
  assert.deepEqual((await listObjects(store, 'NetworkPolicy')).map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['default/keep', 'demo/deny', 'demo/web']);
  assert.deepEqual((await deleteObjects(store, parse(NS))).map((r) => r.line), ['namespace "demo" deleted']);
  assert.deepEqual((await listObjects(store, 'NetworkPolicy')).map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['default/keep']);
  assert.equal(await read(store, objectKey('Namespace', 'demo')), undefined);
  await store.close();
});

test('round trip: apply, get -o yaml (golden), and that YAML applied again is unchanged', async () => {
  const store = await cluster();
  const manifest = np(`
  podSelector: { matchLabels: { app: web } }
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{ namespaceSelector: { matchLabels: { team: a } }, podSelector: { matchExpressions: [{ key: role, operator: In, values: [client] }] } }]
    ports: [{ port: http }, { port: 8000, endPort: 8080, protocol: UDP }]
  egress:
  - to: [{ ipBlock: { cidr: 10.0.0.0/8, except: [10.1.0.0/16] } }]
`);
  await applyObjects(store, parse(NS, manifest));
  const [stored] = await listObjects(store, 'NetworkPolicy', 'demo');
  const fixed = { ...stored, metadata: { ...stored.metadata, uid: '00000000-0000-0000-0000-000000000001', creationTimestamp: '2026-01-02T03:04:05Z' } };
  const yaml = formatYaml([fixed], { asList: false });
  assert.equal(yaml, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: demo
  uid: 00000000-0000-0000-0000-000000000001
  creationTimestamp: 2026-01-02T03:04:05Z
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - protocol: TCP
      port: http
    - protocol: UDP
      port: 8000
      endPort: 8080
    from:
    - podSelector:
        matchExpressions:
        - key: role
          operator: In
          values:
          - client
      namespaceSelector:
        matchLabels:
          team: a
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/8
        except:
        - 10.1.0.0/16
  policyTypes:
  - Ingress
  - Egress
`);
  // What get prints parses back to the same object, and applies as "unchanged".
  const again = parseManifests(formatYaml([stored], { asList: true }), 'get.yaml');
  assert.deepEqual(again[0], { ...stored, metadata: { name: 'web', namespace: 'demo' } });
  const rev = store.revision;
  assert.deepEqual((await applyObjects(store, again)).map((r) => r.line), ['networkpolicy.networking.k8s.io/web unchanged']);
  assert.equal(store.revision, rev);
  await store.close();
});

test('namespaces carry kubernetes.io/metadata.name on create and update; a manifest cannot set another value', async () => {
  const store = await cluster();
  const key = objectKey('Namespace', 'demo');
  const labels = async () => (await read<Namespace>(store, key))!.metadata.labels;
  await applyObjects(store, parse(NS));
  assert.deepEqual(await labels(), { [NAMESPACE_NAME_LABEL]: 'demo' });
  assert.deepEqual((await applyObjects(store, parse(NS))).map((r) => r.line), ['namespace/demo unchanged']);

  const withLabels = (l: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: demo, labels: { ${l} } }\n`;
  assert.deepEqual((await applyObjects(store, parse(withLabels('team: net')))).map((r) => r.line), ['namespace/demo configured']);
  assert.deepEqual(await labels(), { team: 'net', [NAMESPACE_NAME_LABEL]: 'demo' });
  // The API server overwrites the label with the namespace's name: asking for another value changes nothing.
  assert.deepEqual((await applyObjects(store, parse(withLabels(`team: net, ${NAMESPACE_NAME_LABEL}: other`)))).map((r) => r.line), ['namespace/demo unchanged']);
  assert.deepEqual(await labels(), { team: 'net', [NAMESPACE_NAME_LABEL]: 'demo' });
  // A namespace created with the wrong value gets the right one.
  await applyObjects(store, parse(`apiVersion: v1\nkind: Namespace\nmetadata: { name: x, labels: { ${NAMESPACE_NAME_LABEL}: y } }\n`));
  assert.deepEqual((await read<Namespace>(store, objectKey('Namespace', 'x')))!.metadata.labels, { [NAMESPACE_NAME_LABEL]: 'x' });
  // One stored before flatnet set the label gets it on its next apply.
  await store.put(key, JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' }, status: { phase: 'Active' } }));
  assert.deepEqual((await applyObjects(store, parse(NS))).map((r) => r.line), ['namespace/demo configured']);
  assert.deepEqual(await labels(), { [NAMESPACE_NAME_LABEL]: 'demo' });
  await store.close();
});

test('get netpol: kubectl\'s columns and POD-SELECTOR text (golden), and its resource names', () => {
  const NOW = Date.parse('2026-01-02T05:04:05Z');
  const policy = (ns: string, name: string, podSelector: NetworkPolicy['spec']['podSelector'], created = '2026-01-02T03:04:05Z'): NetworkPolicy =>
    ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns, creationTimestamp: created }, spec: { podSelector, policyTypes: ['Ingress'] } });
  const policies = [
    policy('demo', 'allow-web', { matchLabels: { tier: 'web', app: 'shop' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] }),
    policy('demo', 'default-deny', {}, '2026-01-02T05:03:00Z'),
    policy('x', 'odd-ones', { matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }, { key: 'a', operator: 'Exists' }, { key: 'c', operator: 'NotIn', values: ['z', 'y'] }] }),
  ];
  assert.equal(formatTable('NetworkPolicy', policies.slice(0, 2), { wide: false, allNamespaces: false, now: NOW }), [
    'NAME           POD-SELECTOR                          AGE',
    'allow-web      app=shop,env in (dev,prod),tier=web   120m',
    'default-deny   <none>                                65s',
  ].join('\n'));
  // -o wide has no more columns for NetworkPolicy (kubectl's printer has none); -A puts NAMESPACE first.
  assert.equal(formatTable('NetworkPolicy', policies, { wide: true, allNamespaces: true, now: NOW }), [
    'NAMESPACE   NAME           POD-SELECTOR                          AGE',
    'demo        allow-web      app=shop,env in (dev,prod),tier=web   120m',
    'demo        default-deny   <none>                                65s',
    'x           odd-ones       a,!b,c notin (y,z)                    120m',
  ].join('\n'));
  assert.equal(selectorText({ matchLabels: { 'k8s.io/app': 'a' }, matchExpressions: [{ key: 'app', operator: 'In', values: ['x'] }] }), 'app in (x),k8s.io/app=a');

  for (const name of ['networkpolicies', 'networkpolicy', 'netpol', 'networkpolicies.networking.k8s.io']) assert.equal(resourceKind(name), 'NetworkPolicy', name);
  assert.equal(resourceKind('svc'), 'Service');
  assert.equal(resourceKind('netpols'), undefined);
  assert.equal(resourceKind('toString'), undefined);
});
