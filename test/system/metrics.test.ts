// Metrics as Prometheus would scrape them from a running lab: each agent's /metrics on its health port in
// its node's netns, the controller's on the loopback port lab status names. Parsed strictly; a Service
// applied moves the proxy's sync counter and its nft element gauge; a pod's ADD and DEL are counted.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope, inNetns } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { labFor, type TestLab } from '../helpers/lab.js';
import { parsePromText, sampleValue, type Family } from '../helpers/prom-text.js';

const scope = new TestScope('mt');
after(() => scope.cleanupSync());
let t: TestLab;

const WEB = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: default }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, command: [flatnet, serve, --port, "8080"] }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
`;
const SOLO = `apiVersion: v1
kind: Pod
metadata: { name: solo, namespace: default }
spec: { nodeName: node-1, containers: [{ name: s, command: [sleep, infinity] }] }
`;

const FEATURES = ['guard', 'routes', 'masquerade', 'proxy', 'policy'];

/** One agent's scrape, as a scraper in its node's netns (hostNetwork in a cluster) gets it. */
function scrapeAgent(netns: string): Map<string, Family> {
  return parsePromText(inNetns(netns, 'curl', ['-sf', '--max-time', '30', 'http://127.0.0.1:9470/metrics']));
}
const nodes = () => t.lab.plan().nodes;
/** The sum of a sample over every series matching `labels`. */
function total(f: Map<string, Family>, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const fam of f.values()) for (const s of fam.samples) {
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

before(async () => {
  t = labFor(scope, 'm');
  const up = t.cli('lab', 'up');
  assert.equal(up.status, 0, up.stderr);
  await t.applyAndRun('web.yaml', WEB, 2, 60_000);
});

test('every agent serves /metrics: each feature has synced, the sets of its tables are counted, its watches seen', async () => {
  for (const n of nodes()) {
    const f = await until(`node ${n.name}'s agent to have synced every feature`, () => {
      const scraped = scrapeAgent(n.netns);
      return FEATURES.every((feature) => (sampleValue(scraped, 'flatnet_feature_syncs_total', { feature, result: 'ok' }) ?? 0) >= 1) && scraped;
    }, 60_000, 200);
    for (const feature of FEATURES) assert.ok((sampleValue(f, 'flatnet_feature_sync_duration_seconds_count', { feature }) ?? 0) >= 1, feature);
    assert.ok(sampleValue(f, 'flatnet_nft_set_elements', { family: 'ip', table: 'flatnet-proxy' }) !== undefined, `${n.name}: the proxy table's sets`);
    assert.ok(total(f, 'flatnet_store_watch_events_total', {}) > 0, `${n.name}: store events watched`);
    assert.ok(f.get('flatnet_store_watch_lag_revisions')!.samples.length > 0, `${n.name}: a watch lag`);
  }
});

test('the pods\' ADDs are counted by the warm CNI servers, with their latency', () => {
  const scrapes = nodes().map((n) => scrapeAgent(n.netns));
  const adds = scrapes.reduce((s, f) => s + total(f, 'flatnet_cni_requests_total', { command: 'ADD', code: '0' }), 0);
  const timed = scrapes.reduce((s, f) => s + total(f, 'flatnet_cni_request_duration_seconds_count', { command: 'ADD' }), 0);
  assert.ok(adds >= 2, `${adds} successful ADDs for 2 pods`);
  assert.ok(timed >= adds, 'every ADD timed');
});

test('a Service applied moves every proxy\'s sync counter and the proxy table\'s element count', async () => {
  const proxyState = (f: Map<string, Family>) => ({
    syncs: total(f, 'flatnet_feature_syncs_total', { feature: 'proxy' }),
    elements: total(f, 'flatnet_nft_set_elements', { table: 'flatnet-proxy' }),
  });
  const before = new Map(nodes().map((n) => [n.name, proxyState(scrapeAgent(n.netns))]));
  const file = join(scope.dir, 'web2.yaml');
  writeFileSync(file, `apiVersion: v1
kind: Service
metadata: { name: web2, namespace: default }
spec: { selector: { app: web }, ports: [{ port: 81, targetPort: 8080 }] }
`);
  const r = t.cli('apply', '-f', file);
  assert.equal(r.status, 0, r.stderr);
  for (const n of nodes()) {
    await until(`node ${n.name}'s proxy to sync the new Service`, () => {
      const now = proxyState(scrapeAgent(n.netns));
      const was = before.get(n.name)!;
      return now.syncs > was.syncs && now.elements > was.elements;
    }, 60_000, 200);
  }
});

test('a pod created and deleted: its node counts one more ADD and one more DEL, both successful', async () => {
  const node1 = nodes().find((n) => n.name === 'node-1')!;
  const count = (command: string) => total(scrapeAgent(node1.netns), 'flatnet_cni_requests_total', { command, code: '0' });
  const adds = count('ADD');
  const dels = count('DEL');
  await t.applyAndRun('solo.yaml', SOLO, 3, 60_000);
  await until('node-1 to count the ADD', () => count('ADD') > adds, 30_000, 200);
  const r = t.cli('delete', '-f', join(scope.dir, 'solo.yaml'), '--grace-period', '0');
  assert.equal(r.status, 0, r.stderr);
  await until('node-1 to count the DEL', () => count('DEL') > dels, 30_000, 200);
});

test('lab status names the controller\'s metrics address; it answers: leading, its steps run, the store watched', async () => {
  const status = t.cli('lab', 'status').stdout;
  const m = /^metrics: controller (http:\/\/127\.0\.0\.1:\d+\/metrics); each agent http:\/\/127\.0\.0\.1:9470\/metrics in its node's netns/m.exec(status);
  assert.ok(m, status);
  const f = await until('the controller to have watched store events', () => {
    const scraped = parsePromText(execFileSync('curl', ['-sf', '--max-time', '30', m[1]], { encoding: 'utf8' }));
    return total(scraped, 'flatnet_store_watch_events_total', {}) > 0 && scraped;
  }, 30_000, 200);
  assert.equal(sampleValue(f, 'flatnet_controller_leader'), 1);
  for (const step of ['node IPAM', 'scheduler', 'endpointslices']) {
    assert.ok((sampleValue(f, 'flatnet_controller_steps_total', { step, result: 'ok' }) ?? 0) >= 1, step);
  }
  assert.ok(f.has('flatnet_process_cpu_seconds_total'));
});
