// The in-memory nftables: every refusal checked against nft 1.0.6 in a namespace (messages quoted from
// it), whole-or-nothing transactions, operation counts, and listings equal to what nft prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeNft } from '../../src/dataplane/nft/fake.js';
import { NftError } from '../../src/kernel/nft.js';
import { renderSkeleton } from '../../src/dataplane/proxy/skeleton.js';

const BASE = `table inet t {
	map ingress { type ipv4_addr : verdict; }
	set a-1 { type ipv4_addr; flags interval; }
	set a6-1 { type ipv6_addr; flags interval; }
	set p-1 { type inet_proto . inet_service; flags interval; }
	set ports { type inet_service; }
	chain forward-ingress { type filter hook forward priority filter + 10; policy accept;
		ct state established,related accept
		ip daddr vmap @ingress
	}
	chain ig-1 {
		ip saddr @a-1 meta l4proto . th dport @p-1 accept comment "x/web ingress 0"
		drop comment "ingress isolated by x/web"
	}
}
add element inet t ingress { 10.244.1.5 : goto ig-1, 10.244.1.6 : goto ig-1, 10.244.1.7 : drop }
add element inet t a-1 { 10.0.0.0-10.0.0.255, 10.0.1.1, 10.0.2.1-10.0.2.5 }
add element inet t a6-1 { fd00::/64, fd01::1 }
add element inet t p-1 { tcp . 80, tcp . 100-100, udp . 81-90 }
add element inet t ports { 1, 2, 3, 4, 5, 6, 7 }
`;

// `nft list table inet t` after BASE, nft 1.0.6 (a concatenation lists in insertion order: BASE adds it sorted).
const LISTED = `table inet t {
	map ingress {
		type ipv4_addr : verdict
		elements = { 10.244.1.5 : goto ig-1, 10.244.1.6 : goto ig-1,
			     10.244.1.7 : drop }
	}

	set a-1 {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/24, 10.0.1.1,
			     10.0.2.1-10.0.2.5 }
	}

	set a6-1 {
		type ipv6_addr
		flags interval
		elements = { fd00::/64,
			     fd01::1 }
	}

	set p-1 {
		type inet_proto . inet_service
		flags interval
		elements = { tcp . 80,
			     tcp . 100,
			     udp . 81-90 }
	}

	set ports {
		type inet_service
		elements = { 1, 2, 3, 4, 5,
			     6, 7 }
	}

	chain forward-ingress {
		type filter hook forward priority filter + 10; policy accept;
		ct state established,related accept
		ip daddr vmap @ingress
	}

	chain ig-1 {
		ip saddr @a-1 meta l4proto . th dport @p-1 accept comment "x/web ingress 0"
		drop comment "ingress isolated by x/web"
	}
}
`;

function base(opts?: ConstructorParameters<typeof FakeNft>[0]): FakeNft {
  const f = new FakeNft(opts);
  f.applySync(BASE);
  return f;
}

test('lists a table as nft 1.0.6 prints it: declarations split, ranges as prefixes, elements wrapped per type', async () => {
  const f = base();
  assert.equal(await f.listTable('inet', 't'), LISTED);
  assert.equal(await f.listTable('inet', 'nope'), undefined);
  assert.equal(await f.listTable('ip', 't'), undefined, 'a table is its family and name');
  // A listing read back gives the same listing: the applier adopts what it reads.
  const again = new FakeNft();
  await again.apply(LISTED);
  assert.equal(await again.listTable('inet', 't'), LISTED);
});

test('the proxy skeleton as nft -f input lists as its listing form (the aff-T rule folded as nft folds it)', async () => {
  const o = { maxCount: 3, affinityTimeouts: [10800, 60], clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12' };
  const f = new FakeNft();
  await f.apply(renderSkeleton(o, 'input'));
  assert.equal(await f.listTable('ip', 'flatnet-proxy'), renderSkeleton(o, 'listing'));
});

test('lists rules and elements in the shapes nft 1.0.6 prints: implied protocol matches folded, host bits cleared', async () => {
  const f = new FakeNft();
  await f.apply(`table inet f {
	set a { type ipv4_addr; flags interval; }
	set n { type ipv4_addr . inet_proto . inet_service; flags interval; }
	chain c {
		meta l4proto tcp tcp dport 80 accept
		meta l4proto tcp th dport 80 accept
		meta l4proto udp th dport { 53, 5353 } accept
		meta l4proto icmp icmp type echo-request accept
		meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		ip protocol tcp tcp dport 80 accept
		meta nfproto ipv4 ip saddr 10.0.0.1 accept
		tcp dport 80 meta l4proto tcp accept
	}
}
add element inet f a { 10.0.0.5/24 }
add element inet f n { 10.244.0.0-10.244.255.255 . tcp . 80, 10.245.0.1 . tcp . 1-1024 }`);
  const listed = (await f.listTable('inet', 'f'))!;
  assert.equal(listed.slice(listed.indexOf('\tchain c')), `\tchain c {
		tcp dport 80 accept
		tcp dport 80 accept
		udp dport { 53, 5353 } accept
		icmp type echo-request accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		ip protocol tcp tcp dport 80 accept
		ip saddr 10.0.0.1 accept
		tcp dport 80 meta l4proto tcp accept
	}
}
`);
  assert.match(listed, /elements = \{ 10\.0\.0\.0\/24 \}/);
  assert.match(listed, /elements = \{ 10\.244\.0\.0\/16 \. tcp \. 80,\n\t\t\t     10\.245\.0\.1 \. tcp \. 1-1024 \}/);
});

// [what, script, nft 1.0.6's words]: each applied on top of BASE must be refused and change nothing.
const REFUSED: Array<[string, string, RegExp]> = [
  ['element of a missing table', 'add element inet nope a-1 { 10.0.0.1 }', /table inet nope: No such file or directory/],
  ['element of a missing set', 'add element inet t nope { 10.0.0.1 }', /nope .*No such file or directory/],
  ['flush of a missing chain', 'flush chain inet t nope', /chain nope .*No such file or directory/],
  ['delete of a missing chain', 'delete chain inet t nope', /chain nope .*No such file or directory/],
  ['delete of a missing set', 'delete set inet t nope', /No such file or directory/],
  ['delete of a missing map', 'delete map inet t nope', /No such file or directory/],
  ['delete of a missing table', 'delete table inet nope', /No such file or directory/],
  ['a jump to a missing chain', 'table inet t { chain x { jump nope; }; }', /jump\/goto to chain nope: No such file or directory/],
  ['a goto to a missing chain', 'table inet t { chain x {\n ip saddr 10.0.0.1 goto nope\n }\n}', /chain nope: No such file or directory/],
  ['a lookup in a missing set', 'table inet t { chain x { ip saddr @nope accept; }; }', /@nope: No such file or directory/],
  ['a vmap through a missing map', 'table inet t { chain x { ip saddr vmap @nope; }; }', /@nope: No such file or directory/],
  ['a map element going to a missing chain', 'add element inet t ingress { 10.244.1.9 : goto nope }', /chain nope: No such file or directory/],
  ['an IPv6 address in an IPv4 set', 'add element inet t a-1 { ::1 }', /Address family for hostname not supported/],
  ['an IPv4 address in an IPv6 set', 'add element inet t a6-1 { 10.0.0.1 }', /Address family for hostname not supported/],
  // nft 1.0.6 takes "tcp" alone into this set (it lists "ip . 0"): the fake is stricter.
  ['too few fields', 'add element inet t p-1 { tcp }', /datatype mismatch/],
  ['too many fields', 'add element inet t p-1 { tcp . 80 . 90 }', /datatype mismatch/],
  ['a value in a set', 'add element inet t a-1 { 10.5.5.5 : drop }', /set is not a map/],
  ['a map element without its value', 'add element inet t ingress { 10.244.1.9 }', /Invalid argument/],
  ['a range in a set without flags interval', 'add element inet t ports { 10-20 }', /flags interval/],
  ['overlapping intervals in one command', 'add element inet t a-1 { 10.9.0.0/24, 10.9.0.5 }', /conflicting intervals specified/],
  ['an interval overlapping one in the set', 'add element inet t a-1 { 10.0.0.128/25 }', /interval overlaps with an existing one/],
  ['a range overlapping a range', 'add element inet t a-1 { 10.0.2.4-10.0.2.9 }', /interval overlaps with an existing one/],
  ['a concatenated range overlapping another', 'add element inet t p-1 { udp . 85-95 }', /overlaps/],
  ['a map key again with another value', 'add element inet t ingress { 10.244.1.5 : drop }', /File exists/],
  ['an element added twice (the fake is stricter than nft)', 'add element inet t a-1 { 10.0.1.1 }', /already there/],
  ['the same element twice in one command', 'add element inet t ports { 9, 9 }', /already there/],
  ['deleting a missing element', 'delete element inet t a-1 { 10.7.7.7 }', /element does not exist/],
  ['deleting a missing map element', 'delete element inet t ingress { 10.244.9.9 }', /element does not exist/],
  ['deleting part of an interval', 'delete element inet t a-1 { 10.0.0.5 }', /element does not exist/],
  ['deleting a chain a rule jumps to', 'table inet t { chain j { accept; }; chain k { jump j; }; }\ndelete chain inet t j', /Device or resource busy \(still used by chain k\)/],
  ['deleting a chain a map element goes to', 'delete chain inet t ig-1', /Device or resource busy \(still used by map ingress\)/],
  ['deleting a set a rule looks up', 'delete set inet t a-1', /Device or resource busy \(still used by chain ig-1\)/],
  ['redeclaring a set with another type', 'table inet t { set a-1 { type ipv6_addr; }; }', /File exists/],
  ['redeclaring a base chain at another priority', 'table inet t { chain forward-ingress { type filter hook forward priority filter + 5; policy accept; }; }', /Operation not supported/],
  ['a command it does not know', 'insert rule inet t ig-1 accept', /unsupported command/],
];

for (const [what, script, message] of REFUSED) {
  test(`refused: ${what}`, async () => {
    const f = base();
    const before = f.dump();
    const total = f.totalOperations;
    await assert.rejects(f.apply(script), (err: unknown) => err instanceof NftError && message.test(err.message));
    assert.equal(f.dump(), before, 'state unchanged');
    assert.equal(f.totalOperations, total);
    assert.equal(f.lastOperations.total, 0);
  });
}

test('a chain still jumped to is refused; flushed first in the same transaction it goes (as the kernel counts uses)', async () => {
  const f = base();
  await f.apply('table inet t { chain j { jump ig-1; }; chain k { jump j; }; }');
  await assert.rejects(f.apply('delete chain inet t j'), /Device or resource busy \(still used by chain k\)/);
  await f.apply('flush chain inet t k\ndelete chain inet t j');
  assert.ok(!f.dump().includes('chain j {'));
  // A chain's own rules go with it: ig-1 looks up a-1 and p-1, yet it may be deleted once nothing goes to it.
  await f.apply('delete element inet t ingress { 10.244.1.5, 10.244.1.6 }\ndelete chain inet t k\ndelete chain inet t ig-1');
});

test('accepted as nft accepts them: adjacent ranges, add and delete in one transaction, delete map of a set, a re-add in kernel mode', async () => {
  const f = base();
  await f.apply('add element inet t a-1 { 10.0.2.6-10.0.2.9 }');
  await f.apply('add element inet t ports { 99 }\ndelete element inet t ports { 99 }');
  await f.apply('table inet t { set s { type ipv4_addr; }; }\ndelete map inet t s');
  const k = base({ duplicateAdd: 'kernel' });
  await k.apply('add element inet t a-1 { 10.0.1.1 }\nadd element inet t ingress { 10.244.1.5 : goto ig-1 }');
  assert.equal(k.lastOperations.elementsAdded, 0, 'nothing new');
  await assert.rejects(k.apply('add element inet t ingress { 10.244.1.5 : drop }'), /File exists/);
});

test('a transaction half good and half bad changes nothing, and the next one applies', async () => {
  const f = base();
  const before = f.dump();
  await assert.rejects(f.apply([
    'add element inet t ingress { 10.244.5.5 : drop }',
    'flush chain inet t ig-1',
    'table inet t { chain new-1 { drop; }; }',
    'delete element inet t a-1 { 10.0.1.1 }',
    'add element inet t ingress { 10.244.6.6 : goto nope }',
  ].join('\n')), NftError);
  assert.equal(f.dump(), before);
  await f.apply('add element inet t ingress { 10.244.5.5 : drop }');
  assert.match(f.dump(), /10\.244\.5\.5 : drop/);
});

test('operations: blocks added, changed, removed and elements added, deleted, per transaction and in total', async () => {
  const f = new FakeNft();
  assert.deepEqual(f.applySync(BASE), { blocksAdded: 7, blocksChanged: 0, blocksRemoved: 0, elementsAdded: 18, elementsDeleted: 0, total: 25 });
  // A chain made empty, then filled in the same transaction, is one block added.
  const ops = f.applySync('table inet t { chain pi-2 { }; }\ntable inet t { chain pi-2 { accept; }; }\nadd element inet t ports { 8 }\ndelete element inet t ports { 1, 2 }');
  assert.deepEqual(ops, { blocksAdded: 1, blocksChanged: 0, blocksRemoved: 0, elementsAdded: 1, elementsDeleted: 2, total: 4 });
  // A changed chain (flush and new rules) is one change; a set redeclared as it is, none.
  assert.equal(f.applySync('flush chain inet t ig-1\ntable inet t {\nset a-1 { type ipv4_addr; flags interval; }\nchain ig-1 {\ndrop\n}\n}').total, 1);
  assert.equal(f.lastOperations.blocksChanged, 1);
  assert.equal(f.applySync('add table inet t').total, 0, 'nothing to do: zero');
  assert.deepEqual(f.applySync('delete chain inet t pi-2\ndelete set inet t a6-1'), { blocksAdded: 0, blocksChanged: 0, blocksRemoved: 2, elementsAdded: 0, elementsDeleted: 2, total: 4 });
  assert.equal(f.totalOperations, 25 + 4 + 1 + 0 + 4);
  // A table removed counts its blocks and elements; made again in the same transaction, its blocks changed.
  assert.deepEqual(f.applySync('add table inet t\ndelete table inet t'), { blocksAdded: 0, blocksChanged: 0, blocksRemoved: 6, elementsAdded: 0, elementsDeleted: 15, total: 21 });
  f.applySync(BASE);
  const rebuild = f.applySync(`add table inet t\ndelete table inet t\n${BASE}`);
  assert.deepEqual(rebuild, { blocksAdded: 0, blocksChanged: 7, blocksRemoved: 0, elementsAdded: 18, elementsDeleted: 18, total: 43 });
});

test('dump is canonical: the same content reached in another order dumps the same; a failure injected changes nothing', async () => {
  const a = base();
  const b = new FakeNft();
  await b.apply(BASE.replace(/add element inet t ports \{[^}]*\}/, 'add element inet t ports { 7, 6, 5 }\nadd element inet t ports { 4, 3, 2, 1 }'));
  await b.apply('add table ip other\nadd element inet t ingress { 10.244.9.9 : drop }');
  await b.apply('delete table ip other\ndelete element inet t ingress { 10.244.9.9 }');
  assert.equal(a.dump(), b.dump());
  a.failNext('Operation not permitted');
  await assert.rejects(a.apply('add element inet t ports { 8 }'), /Operation not permitted/);
  assert.equal(a.dump(), b.dump());
  await a.apply('add element inet t ports { 8 }');
  assert.equal(a.scripts.length, 3);
});
