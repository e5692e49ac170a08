// The table applier's transaction, decided without a kernel (planTable): the order of its parts, what
// counts as an operation, what can only be rebuilt, and how `touched` narrows the element compare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planTable, type Mirror } from '../../src/dataplane/nft/applier.js';
import type { NftTable } from '../../src/dataplane/nft/model.js';

const HEADER = 'type filter hook forward priority filter; policy accept;';

function have(): Mirror {
  return {
    blocks: new Map([
      ['set a-1', { kind: 'set', name: 'a-1', lines: ['type ipv4_addr', 'flags interval'] }],
      ['set a-old', { kind: 'set', name: 'a-old', lines: ['type ipv4_addr'] }],
      ['set m', { kind: 'map', name: 'm', lines: ['type ipv4_addr : verdict'] }],
      ['chain base', { kind: 'chain', name: 'base', lines: [HEADER, 'ip daddr vmap @m'] }],
      ['chain pi-1', { kind: 'chain', name: 'pi-1', lines: ['ip saddr @a-1 accept'] }],
      ['chain ig-old', { kind: 'chain', name: 'ig-old', lines: ['ip saddr @a-old drop'] }],
    ]),
    elements: new Map([['a-1', new Map([['10.0.0.0/24', '']])], ['a-old', new Map([['10.9.9.9', '']])], ['m', new Map([['10.0.0.1', 'goto ig-old']])]]),
  };
}

function want(): NftTable {
  return {
    family: 'inet', name: 't',
    blocks: [
      { kind: 'set', name: 'a-1', body: ['type ipv4_addr', 'flags interval'] },
      { kind: 'set', name: 'a-2', body: ['type ipv4_addr', 'flags interval'] },
      { kind: 'map', name: 'm', body: ['type ipv4_addr : verdict'] },
      { kind: 'chain', name: 'base', body: [HEADER, 'ip daddr vmap @m'] },
      { kind: 'chain', name: 'pi-1', body: ['ip saddr @a-1 ip saddr @a-2 accept'] },
      { kind: 'chain', name: 'in', body: ['type filter hook input priority filter; policy accept;', 'jump pi-1'] },
    ],
    elements: new Map([['a-1', new Map([['10.0.0.0/24', '']])], ['a-2', new Map([['10.1.0.0/16', '']])], ['m', new Map([['10.0.0.2', 'goto pi-1']])]]),
  };
}

test('one transaction in the order the kernel takes it, and its operation count', () => {
  const plan = planTable('inet', 't', have(), want(), undefined);
  assert.notEqual(plan, 'rebuild');
  if (plan === 'rebuild') return;
  assert.deepEqual(plan.script, [
    'table inet t {', '\tset a-2 {', '\t\ttype ipv4_addr', '\t\tflags interval', '\t}', '}',
    'table inet t {', '\tchain in {', '\t\ttype filter hook input priority filter; policy accept;', '\t}', '}',
    'flush chain inet t pi-1',
    'table inet t {', '\tchain pi-1 {', '\t\tip saddr @a-1 ip saddr @a-2 accept', '\t}', '}',
    'table inet t {', '\tchain in {', '\t\tjump pi-1', '\t}', '}',
    'delete element inet t m { 10.0.0.1 }',
    'add element inet t a-2 { 10.1.0.0/16 }',
    'add element inet t m { 10.0.0.2 : goto pi-1 }',
    'flush chain inet t ig-old',
    'delete set inet t a-old',
    'delete chain inet t ig-old',
  ]);
  // Blocks: a-2 and in added, pi-1 changed, a-old and ig-old removed (5); elements: 1 deleted, 2 added.
  assert.equal(plan.operations, 8);
  const mirror = have();
  plan.commit(mirror);
  const again = planTable('inet', 't', mirror, want(), undefined);
  assert.ok(again !== 'rebuild' && again.script.length === 0 && again.operations === 0, 'the committed mirror is the render');
});

test('what no flush can change is rebuilt; touched narrows the compare', () => {
  const retyped = want();
  retyped.blocks[0] = { kind: 'set', name: 'a-1', body: ['type ipv4_addr'] };
  assert.equal(planTable('inet', 't', have(), retyped, undefined), 'rebuild', 'a set declared differently');
  const rehooked = want();
  rehooked.blocks[3] = { kind: 'chain', name: 'base', body: [HEADER.replace('filter;', 'filter + 10;'), 'ip daddr vmap @m'] };
  assert.equal(planTable('inet', 't', have(), rehooked, undefined), 'rebuild', 'a base chain hooked differently');
  const kind = want();
  kind.blocks[2] = { kind: 'set', name: 'm', body: ['type ipv4_addr : verdict'] };
  assert.equal(planTable('inet', 't', have(), kind, undefined), 'rebuild', 'a map become a set');

  const same: NftTable = { ...want(), blocks: want().blocks.filter((b) => b.name !== 'a-2' && b.name !== 'in' && b.name !== 'pi-1').concat(
    { kind: 'chain', name: 'pi-1', body: ['ip saddr @a-1 accept'] }, { kind: 'set', name: 'a-old', body: ['type ipv4_addr'] }, { kind: 'chain', name: 'ig-old', body: ['ip saddr @a-old drop'] }) };
  same.elements = new Map([['m', new Map([['10.0.0.1', 'goto ig-old'], ['10.0.0.3', 'accept']])], ['a-1', new Map([['10.0.0.0/25', '']])]]);
  const narrowed = planTable('inet', 't', have(), same, new Map([['m', ['10.0.0.3', '10.0.0.1']]]));
  assert.ok(narrowed !== 'rebuild');
  assert.deepEqual(narrowed.script, ['add element inet t m { 10.0.0.3 : accept }'], 'a-1 is not in touched: not compared');
  const all = planTable('inet', 't', have(), same, undefined);
  assert.ok(all !== 'rebuild');
  assert.deepEqual(all.script, ['delete element inet t a-1 { 10.0.0.0/24 }', 'add element inet t m { 10.0.0.3 : accept }', 'add element inet t a-1 { 10.0.0.0/25 }'],
    'a-old is in no element list: its elements are left alone');
});
