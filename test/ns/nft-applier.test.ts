// NftTableApplier against the real nft (1.0.6) in a fresh namespace per case: a table of interval
// sets, concatenations, a verdict map and chains is built in one transaction; a sync with nothing new
// and a restarted applier write nothing; one element is one operation; a changed chain is replaced
// alone (every other rule keeps its handle); a chain leaves in the same sync as the map element that
// jumped to it; a bad element fails the whole transaction and leaves the kernel as it was.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestScope } from '../helpers/scope.js';
import { Netns } from '../../src/kernel/netns.js';
import { NetnsNftKernel, type NftKernel } from '../../src/dataplane/nft/kernel.js';
import { NftTableApplier } from '../../src/dataplane/nft/applier.js';
import { parseTableListing } from '../../src/dataplane/nft/listing.js';
import type { NftBlock, NftTable } from '../../src/dataplane/nft/model.js';

const scope = new TestScope('nfa');
after(() => scope.cleanupSync());

const NAME = 'flatnet-test';

/** The real kernel, and every script sent to it. */
class Recording implements NftKernel {
  readonly scripts: string[] = [];
  private readonly real: NetnsNftKernel;
  constructor(ns: Netns) { this.real = new NetnsNftKernel(ns); }
  apply(script: string): Promise<void> { this.scripts.push(script); return this.real.apply(script); }
  listTable(family: string, name: string): Promise<string | undefined> { return this.real.listTable(family, name); }
}

function fresh(label: string): { netns: string; kernel: Recording; ns: Netns } {
  const netns = scope.netns(label);
  const ns = new Netns(`/run/netns/${netns}`);
  return { netns, ns, kernel: new Recording(ns) };
}

const nft = (netns: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', netns, 'nft', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const set = (name: string, ...body: string[]): NftBlock => ({ kind: 'set', name, body });
const chain = (name: string, ...body: string[]): NftBlock => ({ kind: 'chain', name, body });

/** A policy-shaped table: base chain → vmap → group chain → policy chain matching interval sets. */
function policyTable(): NftTable {
  return {
    family: 'inet', name: NAME,
    blocks: [
      { kind: 'map', name: 'ingress', body: ['type ipv4_addr : verdict'] },
      set('a-1', 'type ipv4_addr', 'flags interval'),
      set('a-all', 'type ipv4_addr', 'flags interval'),
      set('p-1', 'type inet_proto . inet_service', 'flags interval'),
      set('n-1', 'type ipv4_addr . inet_proto . inet_service', 'flags interval'),
      chain('forward-ingress', 'type filter hook forward priority filter + 10; policy accept;', 'ct state established,related accept', 'ip daddr vmap @ingress'),
      chain('ig-0a1b2c3d', 'jump pi-1', 'drop comment "ingress isolated by x/web"'),
      chain('ig-11111111', 'jump pi-2', 'drop comment "ingress isolated by x/deny"'),
      chain('pi-1',
        'ip saddr @a-1 meta l4proto . th dport @p-1 accept comment "x/web ingress 0"',
        'ip saddr @a-1 ip daddr . meta l4proto . th dport @n-1 accept comment "x/web ingress 0"'),
      chain('pi-2', 'ip saddr @a-all accept comment "x/deny ingress 0"'),
    ],
    elements: new Map([
      ['ingress', new Map([['10.244.1.5', 'goto ig-0a1b2c3d'], ['10.244.1.6', 'goto ig-11111111']])],
      ['a-1', new Map([['10.0.0.0/24', ''], ['10.0.1.1-10.0.1.5', ''], ['10.0.2.0/23', '']])],
      ['a-all', new Map([['0.0.0.0/0', '']])],
      ['p-1', new Map([['tcp . 80', ''], ['udp . 81-90', '']])],
      ['n-1', new Map([['10.0.0.1 . tcp . 80-90', ''], ['10.244.1.5 . tcp . 8080', '']])],
    ]),
  };
}

/** The kernel's table as blocks (sorted by name) and elements (sorted), to compare with a render. */
function kernelState(netns: string): { blocks: string[]; elements: Record<string, string[]> } {
  const t = parseTableListing(nft(netns, 'list', 'table', 'inet', NAME))!;
  return {
    blocks: t.blocks.map((b) => `${b.kind} ${b.name}: ${b.body.join(' | ')}`).sort(),
    elements: Object.fromEntries([...t.elements].filter(([, m]) => m.size > 0).map(([s, m]) => [s, [...m].map(([k, v]) => (v ? `${k} : ${v}` : k)).sort()]).sort()),
  };
}

function renderedState(t: NftTable): { blocks: string[]; elements: Record<string, string[]> } {
  return {
    blocks: t.blocks.map((b) => `${b.kind} ${b.name}: ${(b.listing ?? b.body).join(' | ')}`).sort(),
    elements: Object.fromEntries([...t.elements].filter(([, m]) => m.size > 0).map(([s, m]) => [s, [...m].map(([k, v]) => (v ? `${k} : ${v}` : k)).sort()]).sort()),
  };
}

/** Rule handles by chain, from `nft -a list table`: "chain: rule text # handle N". */
function handles(netns: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let chainName = '';
  for (const line of nft(netns, '-a', 'list', 'table', 'inet', NAME).split('\n')) {
    const c = /^\tchain (\S+) \{/.exec(line);
    if (c) { chainName = c[1]; out.set(chainName, []); continue; }
    if (chainName && /# handle \d+$/.test(line) && line.startsWith('\t\t')) out.get(chainName)!.push(line.trim());
  }
  return out;
}

const elementCount = (t: NftTable) => [...t.elements.values()].reduce((n, m) => n + m.size, 0);

test('nft applier: build in one transaction, then nothing to write, also for a restarted applier', async () => {
  const { netns, ns, kernel } = fresh('a');
  const want = policyTable();
  const applier = new NftTableApplier(kernel, 'inet', NAME);
  assert.deepEqual(await applier.sync(want), { rebuilt: true, operations: want.blocks.length + elementCount(want) });
  assert.equal(kernel.scripts.length, 1, 'one transaction');
  assert.deepEqual(kernelState(netns), renderedState(want));

  assert.deepEqual(await applier.sync(want), { rebuilt: false, operations: 0 });
  assert.deepEqual(await new NftTableApplier(new NetnsNftKernel(ns), 'inet', NAME).sync(policyTable()), { rebuilt: false, operations: 0 }, 'restart writes nothing');
  assert.equal(kernel.scripts.length, 1, 'nothing sent when nothing changed');
});

test('nft applier: one element is one operation; an interval replaced is two; only touched keys are compared', async () => {
  const { netns, kernel } = fresh('b');
  const want = policyTable();
  const applier = new NftTableApplier(kernel, 'inet', NAME);
  await applier.sync(want);

  want.elements.get('n-1')!.set('10.244.1.6 . udp . 53', '');
  assert.deepEqual(await applier.sync(want), { rebuilt: false, operations: 1 });
  assert.equal(kernel.scripts.at(-1), `add element inet ${NAME} n-1 { 10.244.1.6 . udp . 53 }\n`);

  // 10.0.0.0/24 grows to /23 (10.0.0.0-10.0.1.255): it would overlap 10.0.1.1-10.0.1.5, which goes too.
  const a1 = want.elements.get('a-1')!;
  a1.delete('10.0.0.0/24');
  a1.delete('10.0.1.1-10.0.1.5');
  a1.set('10.0.0.0/23', '');
  assert.deepEqual(await applier.sync(want, new Map([['a-1', ['10.0.0.0/24', '10.0.1.1-10.0.1.5', '10.0.0.0/23']]])), { rebuilt: false, operations: 3 });
  assert.deepEqual(kernelState(netns), renderedState(want));

  // A key not named in `touched` is not looked at.
  want.elements.get('p-1')!.set('sctp . 9', '');
  assert.deepEqual(await applier.sync(want, new Map([['a-1', ['10.0.0.0/23']]])), { rebuilt: false, operations: 0 });
  assert.deepEqual(await applier.sync(want, new Map([['p-1', ['sctp . 9']]])), { rebuilt: false, operations: 1 });
  assert.deepEqual(kernelState(netns), renderedState(want));
});

test('nft applier: a changed chain is flushed and refilled alone; a restarted applier patches a changed render the same way', async () => {
  const { netns, ns, kernel } = fresh('c');
  const want = policyTable();
  const applier = new NftTableApplier(kernel, 'inet', NAME);
  await applier.sync(want);
  const before = handles(netns);

  const changed = { ...want, blocks: want.blocks.map((b) => (b.name === 'pi-1' ? chain('pi-1', 'ip saddr @a-1 accept comment "x/web ingress 0"') : b)) };
  assert.deepEqual(await applier.sync(changed), { rebuilt: false, operations: 1 });
  assert.equal(kernel.scripts.at(-1), `flush chain inet ${NAME} pi-1\ntable inet ${NAME} {\n\tchain pi-1 {\n\t\tip saddr @a-1 accept comment "x/web ingress 0"\n\t}\n}\n`);
  const after = handles(netns);
  for (const [c, rules] of before) if (c !== 'pi-1') assert.deepEqual(after.get(c), rules, `chain ${c} untouched`);
  assert.notDeepEqual(after.get('pi-1'), before.get('pi-1'));
  assert.deepEqual(kernelState(netns), renderedState(changed));

  // An agent restarted with the older render: it reads the table back and puts that one chain back.
  const restarted = new NftTableApplier(new NetnsNftKernel(ns), 'inet', NAME);
  assert.deepEqual(await restarted.sync(want), { rebuilt: false, operations: 1 });
  assert.deepEqual(kernelState(netns), renderedState(want));
});

test('nft applier: new chains and the elements that jump to them, and a chain removed with the map element that jumped to it, in one sync each', async () => {
  const { netns, kernel } = fresh('d');
  const want = policyTable();
  const applier = new NftTableApplier(kernel, 'inet', NAME);
  await applier.sync(want);

  // A new group and policy chain with its own set, referenced by a new vmap element: 3 blocks + 2 elements.
  const grown: NftTable = {
    ...want,
    blocks: [...want.blocks, set('a-3', 'type ipv4_addr', 'flags interval'), chain('ig-33333333', 'jump pi-3', 'drop'), chain('pi-3', 'ip saddr @a-3 accept')],
    elements: new Map([...want.elements, ['ingress', new Map([...want.elements.get('ingress')!, ['10.244.1.7', 'goto ig-33333333']])], ['a-3', new Map([['192.168.0.0/16', '']])]]),
  };
  assert.deepEqual(await applier.sync(grown), { rebuilt: false, operations: 5 });
  assert.deepEqual(kernelState(netns), renderedState(grown));

  // ig-11111111 and pi-2 go with the element that jumped there; a-all, used only by pi-2, goes too: 3 blocks + 1 element.
  const shrunk: NftTable = {
    ...grown,
    blocks: grown.blocks.filter((b) => !['ig-11111111', 'pi-2', 'a-all'].includes(b.name)),
    elements: new Map([...grown.elements].filter(([s]) => s !== 'a-all').map(([s, m]) => [s, s === 'ingress' ? new Map([...m].filter(([k]) => k !== '10.244.1.6')) : m])),
  };
  assert.deepEqual(await applier.sync(shrunk), { rebuilt: false, operations: 4 });
  assert.deepEqual(kernelState(netns), renderedState(shrunk));
  assert.deepEqual(await new NftTableApplier(kernel, 'inet', NAME).sync(shrunk), { rebuilt: false, operations: 0 });
});

test('nft applier: a bad element fails the whole transaction, the kernel keeps what it had, and the next sync reads it again', async () => {
  const { netns, kernel } = fresh('e');
  const want = policyTable();
  const applier = new NftTableApplier(kernel, 'inet', NAME);
  await applier.sync(want);
  const listing = nft(netns, 'list', 'table', 'inet', NAME);

  // A new chain, a new element, and 10.0.0.5 inside 10.0.0.0/24 ("interval overlaps with an existing one").
  const bad: NftTable = {
    ...want,
    blocks: [...want.blocks, chain('pi-9', 'accept')],
    elements: new Map([...want.elements, ['a-1', new Map([...want.elements.get('a-1')!, ['10.0.0.5', '']])], ['p-1', new Map([...want.elements.get('p-1')!, ['tcp . 443', '']])]]),
  };
  await assert.rejects(applier.sync(bad), /overlap/);
  assert.equal(nft(netns, 'list', 'table', 'inet', NAME), listing, 'the kernel is unchanged');

  // The failed sync dropped the mirror: the next one reads the kernel and writes only what is new.
  const good: NftTable = { ...bad, elements: new Map([...bad.elements, ['a-1', want.elements.get('a-1')!]]) };
  assert.deepEqual(await applier.sync(good), { rebuilt: false, operations: 2 });
  assert.deepEqual(kernelState(netns), renderedState(good));
});

test('nft applier: a table of that name holding what an applier never writes is replaced whole; cleanup removes it', async () => {
  const { netns, kernel } = fresh('f');
  execFileSync('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: `table inet ${NAME} {\n\tcounter stray {\n\t}\n\tchain pi-1 {\n\t}\n}\n` });
  const want = policyTable();
  const applier = new NftTableApplier(kernel, 'inet', NAME);
  assert.equal((await applier.sync(want)).rebuilt, true);
  assert.doesNotMatch(nft(netns, 'list', 'table', 'inet', NAME), /stray/);
  assert.deepEqual(kernelState(netns), renderedState(want));

  // A set declared differently cannot be patched: rebuilt, elements and all.
  const retyped: NftTable = { ...want, blocks: want.blocks.map((b) => (b.name === 'a-all' ? set('a-all', 'type ipv4_addr', 'size 1024', 'flags interval') : b)) };
  assert.equal((await applier.sync(retyped)).rebuilt, true);
  assert.deepEqual(kernelState(netns), renderedState(retyped));

  await applier.cleanup();
  assert.throws(() => nft(netns, 'list', 'table', 'inet', NAME));
});
