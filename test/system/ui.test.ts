// `flatnet ui` in a real browser (Debian's headless Chromium, driven by playwright-core) against a
// running 3-node lab: every node, pod and Service appears, a policy's denied pairs are listed, a pod
// created after the page loaded appears without a reload and leaves when deleted, and a click shows
// the pod's details.
// Screenshots are kept under $FLATNET_ARTIFACTS/ui (default: the system temp dir's flatnet-artifacts/ui).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TestScope } from '../helpers/scope.js';
import { until } from '../helpers/until.js';
import { CLI, cluster, labFor, type TestLab } from '../helpers/lab.js';
import { waitPodsRunning } from '../../src/lab/demo.js';

const CHROMIUM = process.env.FLATNET_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.env.FLATNET_ARTIFACTS ?? join(tmpdir(), 'flatnet-artifacts'), 'ui');

const scope = new TestScope('ui');
let t: TestLab;
let ui: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
after(async () => {
  await browser?.close().catch(() => undefined);
  scope.cleanupSync();
});

const MANIFEST = `apiVersion: v1
kind: Pod
metadata: { name: web-1, namespace: default, labels: { app: web } }
spec: { nodeName: node-1, containers: [{ name: s, command: [flatnet, serve, --port, "8080"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-3, namespace: default, labels: { app: web } }
spec: { nodeName: node-3, containers: [{ name: s, command: [flatnet, serve, --port, "8080"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: default, labels: { role: client } }
spec: { nodeName: node-2, containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: web-np, namespace: default }
spec: { type: NodePort, selector: { app: web }, ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web-from-nobody, namespace: default }
spec: { podSelector: { matchLabels: { app: web } }, policyTypes: [Ingress] }
`;

const LATE = `apiVersion: v1
kind: Pod
metadata: { name: late, namespace: default }
spec: { nodeName: node-2, containers: [{ name: c, command: [sleep, infinity] }] }
`;

/** Starts `flatnet ui` on a free loopback port; resolves with the URL it prints. */
async function startUi(): Promise<string> {
  const child = spawn(process.execPath, [CLI, '--lab', t.lab.name, '--state-dir', join(scope.dir, 'labs'), 'ui', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  scope.adoptProcess(child);
  ui = child;
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  return until('flatnet ui to print its URL', () => {
    if (child.exitCode !== null) assert.fail(`flatnet ui exited ${child.exitCode}: ${out}`);
    return /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
  }, 20_000);
}

const shot = async (name: string): Promise<void> => { await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true }); };
const present = (kind: string, id: string) => page.locator(`svg [data-kind="${kind}"][data-id="${id}"]`);
/** The lines of text a box of the picture shows, one per line. */
const linesOf = (kind: string, id: string) => present(kind, id).evaluate((g) => [...g.querySelectorAll('text')].map((x) => x.textContent).join('\n'));

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  t = labFor(scope, 'u');
  await t.lab.up(cluster('auto'));
  await t.applyAndRun('ui.yaml', MANIFEST, 3, 30_000);
  const url = await startUi();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
});

test('the page shows every node with its address and pod CIDR, every pod with its IP, and every Service', async () => {
  const store = t.lab.store();
  let pods;
  try { pods = await waitPodsRunning(store, 3, 30_000); } finally { await store.close(); }
  for (const n of t.lab.plan().nodes) {
    const node = present('node', n.name);
    await node.waitFor({ timeout: 15_000 });
    assert.match(await linesOf('node', n.name), new RegExp(`^${n.name}\n${n.ip.replace(/\./g, '\\.')}\npods 10\\.244\\.\\d+\\.0/24$`));
  }
  for (const p of pods) {
    const el = present('pod', `default/${p.metadata.name}`);
    await el.waitFor({ timeout: 15_000 });
    await until(`pod ${p.metadata.name} to show its IP`, async () => (await el.textContent() ?? '').includes(p.status!.podIP!));
  }
  for (const s of ['default/web', 'default/web-np']) await present('service', s).waitFor({ timeout: 15_000 });
  assert.match(await linesOf('service', 'default/web-np'), /^default\/web-np\nNodePort 10\.96\.\d+\.\d+\n80\/TCP node:30080$/);
  for (const seg of t.lab.cluster().segments) assert.equal(await present('segment', seg.name).count(), 1);
  await page.locator('#denied', { hasText: 'default/client ✗ default/web-1:8080/TCP' }).waitFor({ timeout: 15_000 });
  await shot('lab');
});

test('a pod created after the page loaded appears without a reload, with its IP', async () => {
  const before = await page.evaluate(() => performance.timeOrigin);
  await t.applyAndRun('late.yaml', LATE, 4, 30_000);
  const late = present('pod', 'default/late');
  await late.waitFor({ timeout: 15_000 });
  await until('the late pod to show an IP', async () => /10\.244\.\d+\.\d+/.test(await late.textContent() ?? ''));
  assert.equal(await page.evaluate(() => performance.timeOrigin), before, 'the page was not reloaded');
  await shot('late-pod');
});

test('clicking a pod shows its node, IP, labels and the Services it backs', async () => {
  await present('pod', 'default/web-3').click();
  const details = page.locator('#pod-details');
  await details.waitFor({ timeout: 10_000 });
  const text = await details.textContent() ?? '';
  assert.match(text, /default\/web-3/);
  assert.match(text, /node-3/);
  assert.match(text, /app=web/);
  assert.match(text, /default\/web-np/);
  await shot('pod-details');
});

test('a deleted pod leaves the picture; SIGTERM stops flatnet ui', async () => {
  const r = t.cli('delete', '-f', join(scope.dir, 'late.yaml'), '--grace-period', '0');
  assert.equal(r.status, 0, r.stderr);
  await present('pod', 'default/late').waitFor({ state: 'detached', timeout: 15_000 });
  const exited = new Promise<number | null>((resolve) => ui!.once('exit', (code) => resolve(code)));
  ui!.kill('SIGTERM');
  assert.equal(await exited, 0);
});
