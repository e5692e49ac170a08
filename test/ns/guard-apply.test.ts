// The guard applier against the real nft in a fresh namespace: the first sync builds the table, a sync
// with nothing new writes nothing, a node that comes or goes is one element operation, a restarted
// applier adopts the table and writes nothing, and a table of another shape is rebuilt.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestScope } from '../helpers/scope.js';
import { Netns } from '../../src/kernel/netns.js';
import { GuardApplier } from '../../src/dataplane/guard/apply.js';
import { guardElements, renderGuardSkeleton } from '../../src/dataplane/guard/render.js';
import type { Node } from '../../src/api/types.js';

const scope = new TestScope('gda');
after(() => scope.cleanupSync());

const node = (name: string, ip: string): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {}, status: { addresses: [{ type: 'InternalIP', address: ip }] } });
const listing = (netns: string) => execFileSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'table', 'inet', 'flatnet-guard'], { encoding: 'utf8' });
const INPUTS = { podInterfaces: ['fn*', 'cni0'], vxlanPort: 8472 };

test('guard applier: build, no-op, one element per node change, adoption after a restart, rebuild of another shape', async () => {
  const netns = scope.netns('g');
  const ns = new Netns(`/run/netns/${netns}`);
  const two = guardElements([node('a', '10.100.0.11'), node('b', '10.100.1.11')]);
  const applier = new GuardApplier(ns, INPUTS);
  assert.deepEqual(await applier.sync(two), { rebuilt: true, operations: 2 });
  assert.match(listing(netns), /elements = \{ 10\.100\.0\.11, 10\.100\.1\.11 \}/);
  assert.deepEqual(await applier.sync(two), { rebuilt: false, operations: 0 });

  const three = guardElements([node('a', '10.100.0.11'), node('b', '10.100.1.11'), node('c', '2001:db8::c')]);
  assert.deepEqual(await applier.sync(three), { rebuilt: false, operations: 1 });
  assert.match(listing(netns), /set nodes6 \{\n\t\ttype ipv6_addr\n\t\telements = \{ 2001:db8::c \}/);
  assert.deepEqual(await applier.sync(guardElements([node('a', '10.100.0.11'), node('c', '2001:db8::c')])), { rebuilt: false, operations: 1 });

  // A restarted agent: a new applier finds the table right and writes nothing.
  const restarted = new GuardApplier(ns, INPUTS);
  assert.deepEqual(await restarted.sync(guardElements([node('a', '10.100.0.11'), node('c', '2001:db8::c')])), { rebuilt: false, operations: 0 });

  // Another VXLAN port is another shape: replaced whole, in one transaction.
  const other = new GuardApplier(ns, { ...INPUTS, vxlanPort: 4789 });
  assert.deepEqual(await other.sync(two), { rebuilt: true, operations: 2 });
  assert.match(listing(netns), /udp dport 4789 fib daddr type local ip saddr != @nodes4 drop/);
  assert.doesNotMatch(listing(netns), /8472|2001:db8::c/);
  assert.equal(listing(netns).replace(/\t\telements = .*\n/g, ''), renderGuardSkeleton({ ...INPUTS, vxlanPort: 4789 }));

  await other.cleanup();
  assert.throws(() => listing(netns));
});
