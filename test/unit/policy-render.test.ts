import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyRenderer, renderPolicy } from '../../src/dataplane/policy/renderer.js';
import { cidrRange, formatRange, mergeRanges, subtractRange } from '../../src/policy/addresses.js';
import { namespace, pod, policy } from '../helpers/policy-objects.js';

const elements = (t: ReturnType<typeof renderPolicy>, prefix: string) =>
  [...t.elements].filter(([n]) => n.startsWith(prefix)).map(([, e]) => [...e.keys()]);
const chain = (t: ReturnType<typeof renderPolicy>, name: string) => t.blocks.find((b) => b.kind === 'chain' && b.name === name)?.body;

test('ranges: a cidr with host bits is its network; except cuts a hole; adjacent ranges join; nft spelling', () => {
  const r = (c: string) => cidrRange(c)!;
  assert.equal(formatRange(r('10.1.2.3/16')), '10.1.0.0/16');
  assert.deepEqual(subtractRange([r('10.0.0.0/24')], r('10.0.0.128/25')).map(formatRange), ['10.0.0.0/25']);
  assert.deepEqual(subtractRange([r('10.0.0.0/24')], r('10.0.0.5')).map(formatRange), ['10.0.0.0-10.0.0.4', '10.0.0.6-10.0.0.255']);
  assert.deepEqual(mergeRanges([r('10.0.0.0/25'), r('10.0.0.128/25'), r('10.0.1.1')]).map(formatRange), ['10.0.0.0/24', '10.0.1.1']);
  assert.equal(formatRange(r('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(formatRange(r('fd00::5/120')), 'fd00::/120');
});

test('no policy: the table holds its maps and base chains, and isolates nobody', () => {
  const t = renderPolicy({ nodeName: 'node-1', pods: [pod('x', 'a', { ip: '10.244.1.2' })], namespaces: [namespace('x')], policies: [], ipv6: false });
  assert.deepEqual(t.blocks.map((b) => b.name), ['ingress', 'egress', 'self', 'forward-egress', 'input-egress', 'forward-ingress']);
  assert.equal(t.elements.get('ingress')!.size + t.elements.get('egress')!.size, 0);
  assert.deepEqual([...t.elements.get('self')!.keys()], [], 'no pod is isolated: a pod churn leaves the table as it is');
  assert.deepEqual(chain(t, 'forward-ingress'), ['type filter hook forward priority filter + 10; policy accept;', 'ct state established,related accept',
    'ip saddr . ip daddr @self accept', 'ip daddr vmap @ingress']);
});

test('only local pods are isolated; host-network pods and pods elsewhere are not keys', () => {
  const pods = [pod('x', 'a', { ip: '10.244.1.2' }), pod('x', 'b', { ip: '10.244.2.2', node: 'node-2' }), pod('x', 'h', { hostNetwork: true, ip: '192.168.0.1' })];
  const t = renderPolicy({ nodeName: 'node-1', pods, namespaces: [namespace('x')], policies: [policy('x', 'deny', {})], ipv6: false });
  assert.deepEqual([...t.elements.get('ingress')!.keys()], ['10.244.1.2']);
  assert.equal(t.elements.get('egress')!.size, 0, 'policyTypes [Ingress] isolates no egress');
  assert.deepEqual([...t.elements.get('self')!.keys()], ['10.244.1.2 . 10.244.1.2'], 'an isolated pod reaching itself through a Service passes');
  const group = t.elements.get('ingress')!.get('10.244.1.2')!.replace('goto ', '');
  assert.match(chain(t, group)!.at(-1)!, /^drop comment "ingress isolated by x\/deny"$/);
});

test('a named port means each destination pod\'s own number; a pod without the name adds nothing', () => {
  const pods = [
    pod('x', 'a', { ip: '10.244.1.2', ports: [{ name: 'web', port: 8080 }] }),
    pod('x', 'b', { ip: '10.244.1.3', ports: [{ name: 'web', port: 9090 }] }),
    pod('x', 'c', { ip: '10.244.1.4', ports: [{ name: 'other', port: 80 }] }),
  ];
  const p = policy('x', 'web', { ingress: [{ ports: [{ protocol: 'TCP', port: 'web' }] }] });
  const t = renderPolicy({ nodeName: 'node-1', pods, namespaces: [namespace('x')], policies: [p], ipv6: false });
  assert.deepEqual(elements(t, 'n-'), [['10.244.1.2 . tcp . 8080', '10.244.1.3 . tcp . 9090']]);
});

test('except narrows only its own peer: another peer allowing the range still allows it', () => {
  const p = policy('x', 'blocks', { ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }, { ipBlock: { cidr: '10.1.2.0/24' } }] }] });
  const t = renderPolicy({ nodeName: 'node-1', pods: [pod('x', 'a', { ip: '10.244.1.2' })], namespaces: [namespace('x')], policies: [p], ipv6: false });
  assert.deepEqual(elements(t, 'b-'), [['10.0.0.0/16', '10.1.2.0/24', '10.2.0.0-10.255.255.255']]);
});

test('ports: TCP by default, endPort ranges merged per protocol, a protocol without port is every port', () => {
  const p = policy('x', 'ports', { ingress: [{ ports: [{ protocol: 'TCP', port: 80, endPort: 90 }, { protocol: 'TCP', port: 91 }, { protocol: 'UDP' }, { protocol: 'SCTP', port: 80 }] }] });
  const t = renderPolicy({ nodeName: 'node-1', pods: [pod('x', 'a', { ip: '10.244.1.2' })], namespaces: [namespace('x')], policies: [p], ipv6: false });
  assert.deepEqual(elements(t, 'p-'), [['sctp . 80', 'tcp . 80-91', 'udp . 0-65535']]);
});

test('a policy type without rules isolates and allows nothing: an egress-only policy leaves ingress open', () => {
  const t = renderPolicy({ nodeName: 'node-1', pods: [pod('x', 'a', { ip: '10.244.1.9' })], namespaces: [namespace('x')], policies: [policy('x', 'deny', { policyTypes: ['Egress'], egress: [] })], ipv6: false });
  assert.deepEqual([...t.elements.get('egress')!.keys()], ['10.244.1.9']);
  assert.equal(t.elements.get('ingress')!.size, 0);
  const group = t.elements.get('egress')!.get('10.244.1.9')!.replace('goto ', '');
  assert.deepEqual(chain(t, group), [
    `limit rate 10/second burst 20 packets log prefix "flatnet-drop ${group}" group 13`,
    'drop comment "egress isolated by x/deny"',
  ], 'egress: [] has no rule: nothing is allowed; the drop is logged, rate-limited');
});

test('drop log: each group chain logs its drop under a prefix naming it, the not-a-SYN drop too, all rate-limited', () => {
  const r = new PolicyRenderer();
  const pods = [pod('x', 'a', { ip: '10.244.1.9', labels: { app: 'a' } }), pod('x', 'b', { ip: '10.244.1.10' })];
  const policies = [policy('x', 'deny', { policyTypes: ['Ingress'], ingress: [] }),
    policy('x', 'web', { podSelector: { matchLabels: { app: 'a' } }, policyTypes: ['Ingress'], ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }] })];
  const t = r.render({ nodeName: 'node-1', pods, namespaces: [namespace('x')], policies, ipv6: false });
  const groupA = t.elements.get('ingress')!.get('10.244.1.9')!.replace('goto ', '');
  const groupB = t.elements.get('ingress')!.get('10.244.1.10')!.replace('goto ', '');
  assert.deepEqual(r.groups.get(groupA), { direction: 'ingress', policies: ['x/deny', 'x/web'] });
  assert.deepEqual(r.groups.get(groupB), { direction: 'ingress', policies: ['x/deny'] });
  for (const g of [groupA, groupB]) {
    const body = chain(t, g)!;
    const log = body.findIndex((l) => l.startsWith('limit rate 10/second burst 20 packets log prefix'));
    assert.equal(body[log], `limit rate 10/second burst 20 packets log prefix "flatnet-drop ${g}" group 13`);
    assert.ok(body[log + 1].startsWith('drop comment'), 'the drop follows its log rule: a limit over its rate must not skip the drop');
  }
  const forward = chain(t, 'forward-egress')!;
  const i = forward.findIndex((l) => l.includes('"flatnet-drop not-syn"'));
  assert.ok(i > 0 && forward[i + 1].endsWith('drop comment "not a SYN: no connection to pick up"'));
  assert.ok(Buffer.byteLength(`flatnet-drop ${groupA}`) <= 127);
});

test('dual stack: each family has its maps and sets, and neighbour discovery passes', () => {
  const pods = [pod('x', 'a', { ip: '10.244.1.2', ip6: 'fd00:10:244:1::2' }), pod('y', 'b', { ip: '10.244.2.2', ip6: 'fd00:10:244:2::2', node: 'node-2' })];
  const p = policy('x', 'from-y', { ingress: [{ from: [{ namespaceSelector: {} , podSelector: { matchLabels: { pod: 'b' } } }] }] });
  const t = renderPolicy({ nodeName: 'node-1', pods, namespaces: [namespace('x'), namespace('y')], policies: [p], ipv6: true });
  assert.deepEqual([...t.elements.get('ingress6')!.keys()], ['fd00:10:244:1::2']);
  assert.deepEqual(elements(t, 'a6-'), [['fd00:10:244:2::2']]);
  assert.ok(chain(t, 'forward-ingress')!.includes('icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'));
});

test('cut: only live flows a new state denies, judged after DNAT, each node its own pods', async () => {
  const { flowsToCut } = await import('../../src/dataplane/policy/cut.js');
  const flow = (src: string, dst: string, replySrc: string, dport: number, state = 'ESTABLISHED') =>
    ({ protocol: 'tcp', state, orig: { src, dst, sport: 40000, dport }, reply: { src: replySrc, dst: src, sport: dport, dport: 40000 } });
  const local = new Set(['10.244.1.2']);
  const judged: string[] = [];
  const judge = (q: { from: string; to: string; port: number }) => {
    judged.push(`${q.from}>${q.to}:${q.port}`);
    return { egress: { allowed: true }, ingress: { allowed: q.port !== 81 } };
  };
  const cut = flowsToCut([
    flow('10.244.2.2', '10.96.0.10', '10.244.1.2', 81), // to a ClusterIP: judged against its backend here
    flow('10.244.2.2', '10.244.1.2', '10.244.1.2', 80), // allowed still
    flow('10.244.2.2', '10.244.1.2', '10.244.1.2', 81, 'TIME_WAIT'), // over already
    flow('10.244.2.2', '10.244.3.3', '10.244.3.3', 81), // neither end ours: another node judges it
  ], (ip) => local.has(ip), judge);
  assert.deepEqual(cut.map((f) => f.orig.dst), ['10.96.0.10']);
  assert.deepEqual(judged, ['10.244.2.2>10.244.1.2:81', '10.244.2.2>10.244.1.2:80']);
});

test('the renderer renders again only what a change touches, and always what a fresh render gives', async () => {
  const { PolicyRenderer } = await import('../../src/dataplane/policy/renderer.js');
  const { renderTable } = await import('../../src/dataplane/nft/model.js');
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const nss = ['a', 'b', 'c'].map((n, i) => namespace(n, { team: `t${i % 2}` }));
  let pods = Array.from({ length: 30 }, (_, i) => pod(['a', 'b', 'c'][i % 3], `p${i}`, { node: i % 2 ? 'node-1' : 'node-2', ip: `10.244.${i % 2}.${i + 2}`,
    labels: { app: `app${i % 4}` }, ports: [{ name: 'http', port: 8000 + (i % 3) }] }));
  const policies = Array.from({ length: 12 }, (_, i) => policy(['a', 'b', 'c'][i % 3], `pol${i}`, i % 3 === 0
    ? { podSelector: { matchLabels: { app: `app${i % 4}` } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 't0' } }, podSelector: { matchLabels: { app: `app${(i + 1) % 4}` } } }], ports: [{ protocol: 'TCP', port: 'http' }] }] }
    : i % 3 === 1 ? { policyTypes: ['Ingress', 'Egress'], egress: [{ to: [{ podSelector: { matchLabels: { app: `app${i % 4}` } } }, { ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }] }] }
      : { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['app1', 'app2'] }] }, egress: [{ ports: [{ protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 53 }] }] }));
  const r = new PolicyRenderer();
  const input = () => ({ nodeName: 'node-1', pods, namespaces: nss, policies, ipv6: false });
  const same = () => assert.equal(renderTable(r.render(input())), renderTable(renderPolicy(input())));
  same();
  assert.equal(r.render(input()) && r.rendered, 0, 'nothing changed: no part rendered again');
  for (let step = 0; step < 40; step++) {
    const i = rnd(pods.length);
    const kind = rnd(3);
    if (kind === 0) pods = pods.map((p, j) => (j === i ? { ...p, metadata: { ...p.metadata, labels: { app: `app${rnd(4)}` } } } : p));
    else if (kind === 1) pods = pods.filter((_, j) => j !== i);
    else pods = [...pods, pod(['a', 'b', 'c'][rnd(3)], `new${step}`, { node: rnd(2) ? 'node-1' : 'node-2', ip: `10.244.5.${step + 2}`, labels: { app: `app${rnd(4)}` }, ports: [{ name: 'http', port: 9000 + step }] })];
    same();
  }
  pods = [...pods, pod('c', 'late', { node: 'node-1', ip: '10.244.9.9', labels: { app: 'app3' } })];
  r.render(input());
  assert.ok(r.rendered < policies.length, `one new pod renders again only the parts it touches (${r.rendered} of ${policies.length * 2})`);
});

test('egress: a named port resolves on a pod inside the rule\'s ipBlock, as the evaluator says', async () => {
  const { evaluate } = await import('../../src/policy/evaluate.js');
  const pods = [pod('x', 'a', { ip: '10.244.1.2' }), pod('y', 'b', { ip: '10.244.2.7', node: 'node-2', ports: [{ name: 'web', port: 8080 }] })];
  const p = policy('x', 'out', { policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.2.0/24' } }], ports: [{ protocol: 'TCP', port: 'web' }] }] });
  const t = renderPolicy({ nodeName: 'node-1', pods, namespaces: [namespace('x'), namespace('y')], policies: [p], ipv6: false });
  assert.deepEqual(elements(t, 'n-'), [['10.244.2.7 . tcp . 8080']]);
  assert.equal(evaluate({ pods, namespaces: [namespace('x'), namespace('y')], policies: [p], nodes: [] }, { from: '10.244.1.2', to: '10.244.2.7', port: 8080, protocol: 'TCP' }).allowed, true);
});

test('without a policy isolating anyone, pods coming and going leave the table as it is (an agent restart mid-rollout changes nothing)', async () => {
  const { renderTable } = await import('../../src/dataplane/nft/model.js');
  const one = [pod('x', 'a', { ip: '10.244.1.2' })];
  const two = [...one, pod('x', 'b', { ip: '10.244.1.3' })];
  const render = (pods: typeof one) => renderTable(renderPolicy({ nodeName: 'node-1', pods, namespaces: [namespace('x')], policies: [], ipv6: false }));
  assert.equal(render(two), render(one));
});
