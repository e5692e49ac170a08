// A kubernetes-mode lab's control plane as data: the datastore field of the cluster file, the endpoint
// the agents reach, and the identity and RBAC objects it takes from deploy/flatnet.yaml.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { defaultCluster, parseClusterFile } from '../../src/lab/cluster-file.js';
import { controlPlaneEndpoint, deployManifestPath, rbacObjects, tokenKubeconfigText } from '../../src/lab/control-plane.js';

test('cluster file: datastore is etcd (absent) or kubernetes; anything else is named', () => {
  assert.equal(parseClusterFile('backend: vxlan\n', 'c.yaml').datastore, undefined);
  assert.equal(parseClusterFile('datastore: kubernetes\n', 'c.yaml').datastore, 'kubernetes');
  assert.throws(() => parseClusterFile('datastore: k8s\n', 'c.yaml'), /^Error: c\.yaml: datastore: "k8s" is not one of etcd, kubernetes$/);
});

test('the control-plane endpoint is the router on the first segment, port 6443', () => {
  assert.deepEqual(controlPlaneEndpoint(defaultCluster()), { host: '10.100.0.1', port: 6443 });
});

test("the lab stores deploy/flatnet.yaml's Namespace, ServiceAccount, ClusterRole and binding, and no workload", () => {
  const objs = rbacObjects(readFileSync(deployManifestPath(), 'utf8'));
  assert.deepEqual(objs.map((o) => o.key), [
    '/registry/namespaces/flatnet-system', '/registry/serviceaccounts/flatnet-system/flatnet',
    '/registry/clusterroles/flatnet', '/registry/clusterrolebindings/flatnet',
  ]);
  const ns = objs[0].object as unknown as { metadata: { labels: Record<string, string> }; status: { phase: string } };
  assert.equal(ns.metadata.labels['kubernetes.io/metadata.name'], 'flatnet-system');
  assert.equal(ns.status.phase, 'Active');
  for (const o of objs) assert.match(o.object.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
});

test('a token kubeconfig names the server, the CA and the bearer token, as client libraries read it', () => {
  const cfg = parse(tokenKubeconfigText({ cluster: 'lab', server: 'https://10.100.0.1:6443', caCert: 'PEM', user: 'flatnet', token: 'abc.def.ghi' }));
  assert.equal(cfg.clusters[0].cluster.server, 'https://10.100.0.1:6443');
  assert.equal(Buffer.from(cfg.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), 'PEM');
  assert.equal(cfg.users[0].user.token, 'abc.def.ghi');
  assert.equal(cfg['current-context'], 'lab');
});
