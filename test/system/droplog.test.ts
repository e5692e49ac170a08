// The drop log on a 3-node lab: a default-deny drop and a rule drop, each logged by the node of the
// isolated pod with both pods, the port, the direction and the policy named, read back through
// `flatnet logs drops` (text, -o json, -n, --node, -f); a flood of denied datagrams stays within the
// kernel's rate limit for the dropping chain.
import { test, after, afterEach, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TestScope, inNetns } from '../helpers/scope.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';
import { until } from '../helpers/until.js';
import { CLI } from '../helpers/lab.js';
import { PolicyLab } from '../helpers/policy-lab.js';
import type { DropEvent } from '../../src/droplog/event.js';
import { DROP_LOG_RATE } from '../../src/dataplane/policy/render.js';

const scope = new TestScope('drl');
let pl: PolicyLab;
after(() => { pl?.close(); scope.cleanupSync(); });

const policy = (name: string, ns: string, spec: string) =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec: ${spec}\n`;

before(async () => { pl = await PolicyLab.up(scope, 'd'); });
afterEach(() => pl.deleteAllPolicies());

/** The drop log as `flatnet logs drops -o json` prints it, with extra flags. */
function drops(...flags: string[]): DropEvent[] {
  const r = pl.t.cli('logs', 'drops', '-o', 'json', ...flags);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as DropEvent);
}
const between = (from: string, to: string, port: number) => (e: DropEvent) => e.src.pod === from && e.dst.pod === to && e.dst.port === port;

/** Probes until one is dropped and logged: the policy may take a moment to be in the table. */
async function dropLogged(from: string, to: string, port: number, protocol: 'tcp' | 'udp', match: (e: DropEvent) => boolean): Promise<DropEvent> {
  return until(`a logged drop ${from} -> ${to}:${port}/${protocol}`, async () => {
    const [r] = await pl.probe([{ from, host: pl.ipOf(to), port, protocol, expect: false }]);
    if (r.ok) return undefined;
    return drops().find((e) => between(from, to, port)(e) && match(e));
  }, 30_000, 200);
}

test('a default-deny drop is logged on the isolated pod\'s node, naming both pods and the policy', async () => {
  pl.applyPolicies('deny.yaml', policy('default-deny', 'x', '{ podSelector: {}, policyTypes: [Ingress] }'));
  const e = await dropLogged('y/a', 'x/b', 80, 'tcp', (d) => d.policies.includes('x/default-deny'));
  assert.equal(e.node, pl.nodeOf('x/b'));
  assert.equal(e.direction, 'ingress');
  assert.equal(e.proto, 'tcp');
  assert.deepEqual(e.policies, ['x/default-deny']);
  assert.equal(e.src.ip, pl.ipOf('y/a'));
  assert.equal(e.dst.ip, pl.ipOf('x/b'));
  assert.equal(e.reason, 'ingress to x/b isolated by x/default-deny; no policy allows');
  // The text form, filtered by namespace and node.
  const text = pl.t.cli('logs', 'drops', '-n', 'x', '--node', e.node);
  assert.equal(text.status, 0, text.stderr);
  const line = text.stdout.split('\n').find((l) => l.includes(`y/a ${pl.ipOf('y/a')}:`) && l.includes(`x/b ${pl.ipOf('x/b')}:80`));
  assert.ok(line, text.stdout);
  console.log(`# drop log line: ${line}`);
  assert.match(line, / DROP tcp y\/a .* -> x\/b .*:80: ingress to x\/b isolated by x\/default-deny; no policy allows$/);
  assert.equal(drops('-n', 'z').filter(between('y/a', 'x/b', 80)).length, 0, '-n z: neither end is in z');
  // The node's agent counts the logged drop against the policy in its metrics.
  const netns = pl.t.lab.plan().nodes.find((n) => n.name === e.node)!.netns;
  const families = parsePromText(inNetns(netns, 'curl', ['-sf', '--max-time', '30', 'http://127.0.0.1:9470/metrics']));
  assert.ok((sampleValue(families, 'flatnet_policy_drops_logged_total', { direction: 'ingress', policy: 'x/default-deny' }) ?? 0) >= 1);
});

test('a rule drop names the policy whose rules do not allow the port; -f shows new drops as they come', async () => {
  pl.applyPolicies('allow-81.yaml', policy('allow-81', 'x', '{ podSelector: { matchLabels: { pod: c } }, policyTypes: [Ingress], ingress: [{ ports: [{ port: 81 }] }] }'));
  const follower = spawn(process.execPath, [CLI, '--lab', pl.t.lab.name, '--state-dir', `${scope.dir}/labs`, 'logs', 'drops', '-f', '-o', 'json', '-n', 'x']);
  // Already handled by the test's line reader below: stdio only.
  const followed: DropEvent[] = [];
  createInterface({ input: follower.stdout }).on('line', (l) => followed.push(JSON.parse(l) as DropEvent));
  scope.adoptProcess(follower);
  try {
    const e = await dropLogged('z/b', 'x/c', 80, 'tcp', (d) => d.policies.includes('x/allow-81'));
    assert.equal(e.reason, 'ingress to x/c isolated by x/allow-81; no policy allows');
    assert.equal(e.node, pl.nodeOf('x/c'));
    const [allowed] = await pl.probe([{ from: 'z/b', host: pl.ipOf('x/c'), port: 81, protocol: 'tcp', expect: true }]);
    assert.ok(allowed.ok, 'port 81 is allowed: no drop');
    await until('the follower to print the drop', () => followed.some((d) => between('z/b', 'x/c', 80)(d) && d.policies.includes('x/allow-81')), 15_000);
  } finally { follower.kill('SIGTERM'); }
});

test('a flood of denied datagrams logs no more than the chain\'s rate allows', async () => {
  pl.applyPolicies('deny.yaml', policy('default-deny', 'x', '{ podSelector: {}, policyTypes: [Ingress] }'));
  await dropLogged('z/a', 'x/a', 81, 'udp', (d) => d.policies.includes('x/default-deny'));
  const count = () => drops().filter(between('z/c', 'x/a', 80)).length;
  const before = count();
  const start = Date.now();
  const FLOOD = 400;
  const rs = await pl.probe(Array.from({ length: FLOOD }, () => ({ from: 'z/c', host: pl.ipOf('x/a'), port: 80, protocol: 'udp' as const, expect: false })));
  const seconds = (Date.now() - start) / 1000;
  assert.ok(rs.every((r) => !r.ok), 'every datagram dropped');
  // The burst is logged at once: wait for it, not for time.
  const logged = await until('the burst logged', () => { const n = count() - before; return n >= DROP_LOG_RATE.burst / 2 ? n : undefined; }, 15_000);
  // The bucket may have been full at the start (burst), then refills at the rate for the flood's duration (+1 s of slack for the reads).
  const allowed = DROP_LOG_RATE.burst + Math.ceil((seconds + 1) * DROP_LOG_RATE.perSecond);
  console.log(`# flood: ${FLOOD} datagrams in ${seconds.toFixed(1)} s, ${logged} logged (at most ${allowed})`);
  assert.ok(logged <= allowed && logged < FLOOD, `${logged} logged of ${FLOOD} in ${seconds.toFixed(1)} s: more than ${allowed}`);
});
