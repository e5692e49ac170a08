// The guard table: its rules as nft text, node addresses by family, and reading a listing back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guardElements, renderGuardSkeleton } from '../../src/dataplane/guard/render.js';
import { parseGuardListing } from '../../src/dataplane/guard/apply.js';
import type { Node } from '../../src/api/types.js';

const node = (name: string, ...ips: string[]): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {}, status: { addresses: ips.map((address) => ({ type: 'InternalIP' as const, address })) } });

test('the skeleton checks pod sources on pod interfaces and lets only nodes send VXLAN', () => {
  assert.equal(renderGuardSkeleton({ podInterfaces: ['fn*', 'cni0'], vxlanPort: 8472 }), `table inet flatnet-guard {
\tset nodes4 {
\t\ttype ipv4_addr
\t}

\tset nodes6 {
\t\ttype ipv6_addr
\t}

\tchain prerouting {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tip6 saddr :: return
\t\tiifname "fn*" fib saddr . iif oif missing drop
\t\tiifname "cni0" fib saddr . iif oif missing drop
\t\tiifname "fn*" udp dport 8472 drop
\t\tiifname "cni0" udp dport 8472 drop
\t\tudp dport 8472 fib daddr type local ip saddr != @nodes4 drop
\t\tudp dport 8472 fib daddr type local ip6 saddr != @nodes6 drop
\t}
}
`);
});

test('node addresses by family, as nft prints them; other address types and bad values are left out', () => {
  const n = node('a', '10.100.0.11', '2001:db8:0:0::1');
  n.status!.addresses!.push({ type: 'ExternalIP', address: '198.51.100.1' }, { type: 'InternalIP', address: 'not-an-ip' });
  const e = guardElements([n, node('b', '10.100.1.11')]);
  assert.deepEqual([...e.nodes4].sort(), ['10.100.0.11', '10.100.1.11']);
  assert.deepEqual([...e.nodes6], ['2001:db8::1']);
});

test('a listing reads back as the skeleton plus its elements, wrapped lines included', () => {
  const listing = `table inet flatnet-guard {
\tset nodes4 {
\t\ttype ipv4_addr
\t\telements = { 10.100.0.11, 10.100.0.12,
\t\t\t     10.100.1.11 }
\t}

\tset nodes6 {
\t\ttype ipv6_addr
\t}
}
`;
  const p = parseGuardListing(listing);
  assert.deepEqual([...p.elements.nodes4], ['10.100.0.11', '10.100.0.12', '10.100.1.11']);
  assert.equal(p.elements.nodes6.size, 0);
  assert.ok(!p.skeleton.includes('elements'));
});
