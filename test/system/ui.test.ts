// `flatnet ui` in a real browser (Debian's headless Chromium, driven by playwright-core) against a
// running 3-node lab: every node, pod and Service appears, a policy's denied pairs are listed, a pod
// created after the page loaded appears without a reload and leaves when deleted, and a click shows
// the pod's details, and a trace picked on the page draws its hops and lists its rules.
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
metadata: { name: echo, namespace: default, labels: { app: echo } }
spec: { nodeName: node-1, containers: [{ name: s, command: [flatnet, serve, --port, "8080"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { selector: { app: echo }, ports: [{ port: 80, targetPort: 8080 }] }
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
  await t.applyAndRun('ui.yaml', MANIFEST, 4, 30_000);
  const url = await startUi();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
});

test('the page shows every node with its address and pod CIDR, every pod with its IP, and every Service', async () => {
  const store = t.lab.store();
  let pods;
  try { pods = await waitPodsRunning(store, 4, 30_000); } finally { await store.close(); }
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
  await t.applyAndRun('late.yaml', LATE, 5, 30_000);
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

/** Picks FROM and TO on the page, runs the trace and waits for its report; returns the hop rows' text. */
async function traceOnPage(from: string, to: string, port: string): Promise<string> {
  await page.selectOption('#trace-from', from);
  await page.selectOption('#trace-to', to);
  await page.fill('#trace-port', port);
  await page.selectOption('#trace-proto', 'tcp');
  await page.click('#trace-run');
  await page.locator('#trace-outcome').waitFor({ timeout: 90_000 });
  const rows = page.locator('#trace-hops li.trace-row');
  const n = await rows.count();
  assert.ok(n > 0, 'the report lists hops');
  // Every hop listed has its numbered marker on the picture.
  assert.equal(await page.locator('svg g.trace-hop').count(), n);
  return (await page.locator('#trace-hops').textContent()) ?? '';
}

test('a trace picked on the page draws its hops: a cross-node pod→Service, and a policy drop', async () => {
  // A click picks FROM, a shift-click TO.
  await present('pod', 'default/client').click();
  await present('service', 'default/echo').click({ modifiers: ['Shift'] });
  assert.deepEqual([await page.inputValue('#trace-from'), await page.inputValue('#trace-to')], ['default/client', 'svc/default/echo']);
  const hops = await traceOnPage('default/client', 'svc/default/echo', '');
  const outcome = await page.locator('#trace-outcome').textContent() ?? '';
  assert.match(outcome, /^delivered; Service default\/echo → endpoint default\/echo 10\.244\.\d+\.\d+:8080/, outcome);
  assert.match(hops, /Service default\/echo → endpoint default\/echo/);
  for (const node of ['node-2', 'node-1']) {
    assert.ok(await page.locator(`#trace-hops li[data-node="${node}"]`).count() > 0, `${node}'s hops listed`);
    assert.ok(await page.locator(`svg g.trace-hop[data-node="${node}"]`).count() > 0, `${node}'s markers drawn`);
  }
  assert.equal(await page.locator('#trace-disagreements').count(), 0, await page.locator('#trace-result').textContent() ?? '');
  // The path: client → node-2 → node-1 (labelled VXLAN or direct) → echo.
  assert.equal(await page.locator('svg line.trace-path[data-from="default/client"][data-to="node-2"]').count(), 1);
  assert.equal(await page.locator('svg line.trace-link[data-from="node-2"][data-to="node-1"]').count(), 1);
  assert.match(await page.locator('svg .trace-link-label').first().textContent() ?? '', /^(VXLAN|direct)$/);
  assert.equal(await page.locator('svg line.trace-path[data-from="node-1"][data-to="default/echo"]').count(), 1);
  await shot('trace');

  const denied = await traceOnPage('default/client', 'default/web-1', '8080');
  assert.match(await page.locator('#trace-outcome').textContent() ?? '', /^dropped on node-1/);
  assert.match(denied, /NetworkPolicy default\/web-from-nobody/);
  assert.equal(await page.locator('svg .trace-drop[data-node="node-1"]').count(), 1);
  assert.equal(await page.locator('svg line.trace-path[data-to="default/web-1"]').count(), 0, 'no path drawn past the drop');
  await shot('trace-drop');

  const r = await page.evaluate(async () => {
    const res = await fetch('/api/trace', { method: 'POST', body: JSON.stringify({ from: 'default/client', to: 'default/web-1', port: 99999 }) });
    return { status: res.status, body: await res.json() as unknown };
  });
  assert.deepEqual(r, { status: 400, body: { error: 'port 99999: expected an integer 1-65535', field: 'port', value: 99999 } });
});

test('a deleted pod leaves the picture; SIGTERM stops flatnet ui', async () => {
  const r = t.cli('delete', '-f', join(scope.dir, 'late.yaml'), '--grace-period', '0');
  assert.equal(r.status, 0, r.stderr);
  await present('pod', 'default/late').waitFor({ state: 'detached', timeout: 15_000 });
  const exited = new Promise<number | null>((resolve) => ui!.once('exit', (code) => resolve(code)));
  ui!.kill('SIGTERM');
  assert.equal(await exited, 0);
});
