// The nft listing parser on listings captured from nft 1.0.6 (kernel 6.1) in a namespace made for it:
// interval sets (prefixes, ranges, 0.0.0.0/0, adjacent ranges), concatenations, verdict maps, wrapped
// element lists, element timeouts, and a block of a kind an applier never writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseElements, parseTableListing, sameBlocks, splitListing, tableBlock } from '../../src/dataplane/nft/listing.js';
import { renderTable, type NftTable } from '../../src/dataplane/nft/model.js';
import { addressValue, formatRange } from '../../src/policy/addresses.js';

// nft -f of: sets a4/a6/a-all (interval), p-1/n-1 (interval concatenations), plain, map ingress, two
// chains; then `add element inet t a4 { 10.0.0.0/24, 10.0.1.1-10.0.1.5, 10.0.2.0-10.0.3.255, 10.1.0.7,
// 10.2.0.0/24, 10.2.1.0/24, 192.168.0.0-192.168.0.127 }`, `a6 { fd00::/64, fd01::1-fd01::5, fd02::7 }`,
// `a-all { 0.0.0.0/0 }`, `p-1 { tcp . 80, udp . 81-90, tcp . 0-65535 }`, `n-1 { 10.0.0.1 . tcp . 80-90,
// 10.244.1.5 . tcp . 80 }`, `ingress { 10.0.0.1 : goto ig-0a1b2c3d, 10.0.0.2 : drop, 10.0.0.3 : accept }`.
const POLICY_LIKE = `table inet t {
	set a4 {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/24, 10.0.1.1-10.0.1.5,
			     10.0.2.0/23, 10.1.0.7,
			     10.2.0.0/24, 10.2.1.0/24,
			     192.168.0.0/25 }
	}

	set a6 {
		type ipv6_addr
		flags interval
		elements = { fd00::/64,
			     fd01::1-fd01::5,
			     fd02::7 }
	}

	set a-all {
		type ipv4_addr
		flags interval
		elements = { 0.0.0.0/0 }
	}

	set p-1 {
		type inet_proto . inet_service
		flags interval
		elements = { tcp . 80,
			     udp . 81-90,
			     tcp . 0-65535 }
	}

	set n-1 {
		type ipv4_addr . inet_proto . inet_service
		flags interval
		elements = { 10.0.0.1 . tcp . 80-90,
			     10.244.1.5 . tcp . 80 }
	}

	set plain {
		type ipv4_addr
		elements = { 10.0.0.1, 10.0.0.2 }
	}

	map ingress {
		type ipv4_addr : verdict
		elements = { 10.0.0.1 : goto ig-0a1b2c3d, 10.0.0.2 : drop,
			     10.0.0.3 : accept }
	}

	chain ig-0a1b2c3d {
		drop comment "x y"
	}

	chain forward-ingress {
		type filter hook forward priority filter + 10; policy accept;
		ct state established,related accept
		ip daddr vmap @ingress
		ip saddr @a4 meta l4proto . th dport @p-1 accept comment "x/allow-web ingress 0"
		ip saddr @a4 ip daddr . meta l4proto . th dport @n-1 accept
	}
}
`;

// `add element ip u ports { 0-1023, 8080, 8000-8001, 9000-9005 }`, `c { 10.0.0.0/24 . tcp . 80,
// 10.0.1.0-10.0.1.255 . udp . 0-1023, 10.0.2.1-10.0.2.3 . sctp . 5, 0.0.0.0/0 . tcp . 22 }`,
// `adj { 10.0.0.0-10.0.0.9, 10.0.0.10-10.0.0.19, 10.0.1.5/24 }`, `big { 0.0.0.0-9.255.255.255,
// 11.0.0.0-255.255.255.255 }`, `vm { 10.0.0.0/8 : accept, 192.168.1.1 : drop }`.
const INTERVALS = `table ip u {
	set ports {
		type inet_service
		flags interval
		elements = { 0-1023, 8000-8001, 8080, 9000-9005 }
	}

	set c {
		type ipv4_addr . inet_proto . inet_service
		flags interval
		elements = { 10.0.0.0/24 . tcp . 80,
			     10.0.1.0/24 . udp . 0-1023,
			     10.0.2.1-10.0.2.3 . sctp . 5,
			     0.0.0.0/0 . tcp . 22 }
	}

	set p {
		type inet_proto . inet_service
		flags interval
		elements = { tcp . 0-1023,
			     udp . 53,
			     sctp . 1-2 }
	}

	set adj {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0-10.0.0.9, 10.0.0.10-10.0.0.19,
			     10.0.1.0/24 }
	}

	set big {
		type ipv4_addr
		flags interval
		elements = { 0.0.0.0-9.255.255.255, 11.0.0.0-255.255.255.255 }
	}

	map vm {
		type ipv4_addr : verdict
		flags interval
		elements = { 10.0.0.0/8 : accept, 192.168.1.1 : drop }
	}
}
`;

// A dynamic map with one element added with a timeout, a 41-element verdict map, and a named counter.
const WRAPPED = `table ip w {
	counter cnt {
		packets 0 bytes 0
	}

	map aff {
		type ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
		size 65535
		flags dynamic,timeout
		timeout 3h
		elements = { 10.244.0.5 . 10.96.1.1 . tcp . 80 timeout 30s expires 29s948ms : 10.244.1.10 . 8080 }
	}

	map big {
		type ipv4_addr : verdict
		elements = { 10.1.0.1 : goto c1, 10.1.0.2 : goto c1,
			     10.1.0.3 : goto c1, 10.1.0.4 : goto c1,
			     10.1.0.5 : goto c1, 10.1.0.6 : goto c1,
			     10.1.0.7 : goto c1, 10.1.0.8 : goto c1,
			     10.1.0.9 : goto c1, 10.1.0.10 : goto c1,
			     10.1.0.11 : goto c1, 10.1.0.12 : goto c1,
			     10.1.0.13 : goto c1, 10.1.0.14 : goto c1,
			     10.1.0.15 : goto c1, 10.1.0.16 : goto c1,
			     10.1.0.17 : goto c1, 10.1.0.18 : goto c1,
			     10.1.0.19 : goto c1, 10.1.0.20 : goto c1,
			     10.1.0.21 : goto c1, 10.1.0.22 : goto c1,
			     10.1.0.23 : goto c1, 10.1.0.24 : goto c1,
			     10.1.0.25 : goto c1, 10.1.0.26 : goto c1,
			     10.1.0.27 : goto c1, 10.1.0.28 : goto c1,
			     10.1.0.29 : goto c1, 10.1.0.30 : goto c1,
			     10.1.0.31 : goto c1, 10.1.0.32 : goto c1,
			     10.1.0.33 : goto c1, 10.1.0.34 : goto c1,
			     10.1.0.35 : goto c1, 10.1.0.36 : goto c1,
			     10.1.0.37 : goto c1, 10.1.0.38 : goto c1,
			     10.1.0.39 : goto c1, 10.1.0.40 : goto c1,
			     10.1.1.1 : drop }
	}

	chain c1 {
	}
}
`;

const keys = (m: Map<string, string> | undefined) => [...(m ?? new Map()).keys()];

test('a policy-like table: blocks in order, set declarations without elements, chain lines as listed', () => {
  const t = parseTableListing(POLICY_LIKE)!;
  assert.equal(t.family, 'inet');
  assert.equal(t.name, 't');
  assert.deepEqual(t.foreign, []);
  assert.deepEqual(t.blocks.map((b) => `${b.kind} ${b.name}`),
    ['set a4', 'set a6', 'set a-all', 'set p-1', 'set n-1', 'set plain', 'map ingress', 'chain ig-0a1b2c3d', 'chain forward-ingress']);
  assert.deepEqual(t.blocks[0].body, ['type ipv4_addr', 'flags interval']);
  assert.deepEqual(t.blocks.find((b) => b.name === 'ingress')!.body, ['type ipv4_addr : verdict']);
  assert.deepEqual(t.blocks.find((b) => b.name === 'forward-ingress')!.body, [
    'type filter hook forward priority filter + 10; policy accept;',
    'ct state established,related accept',
    'ip daddr vmap @ingress',
    'ip saddr @a4 meta l4proto . th dport @p-1 accept comment "x/allow-web ingress 0"',
    'ip saddr @a4 ip daddr . meta l4proto . th dport @n-1 accept',
  ]);
  assert.deepEqual(t.blocks.find((b) => b.name === 'ig-0a1b2c3d')!.body, ['drop comment "x y"']);
});

test('interval elements: a range that is a prefix is listed as the prefix, others as ranges; adjacent ranges stay apart', () => {
  const t = parseTableListing(POLICY_LIKE)!;
  // 10.0.2.0-10.0.3.255 went in as a range and is listed as 10.0.2.0/23; 192.168.0.0-192.168.0.127 as /25.
  assert.deepEqual(keys(t.elements.get('a4')), ['10.0.0.0/24', '10.0.1.1-10.0.1.5', '10.0.2.0/23', '10.1.0.7', '10.2.0.0/24', '10.2.1.0/24', '192.168.0.0/25']);
  assert.deepEqual(keys(t.elements.get('a6')), ['fd00::/64', 'fd01::1-fd01::5', 'fd02::7']);
  assert.deepEqual(keys(t.elements.get('a-all')), ['0.0.0.0/0']);
  assert.deepEqual(keys(t.elements.get('plain')), ['10.0.0.1', '10.0.0.2']);
  const u = parseTableListing(INTERVALS)!;
  // Ports are never prefixes, and nft sorts a single-field interval set.
  assert.deepEqual(keys(u.elements.get('ports')), ['0-1023', '8000-8001', '8080', '9000-9005']);
  assert.deepEqual(keys(u.elements.get('adj')), ['10.0.0.0-10.0.0.9', '10.0.0.10-10.0.0.19', '10.0.1.0/24'], 'a host-bit prefix is listed as its network');
  assert.deepEqual(keys(u.elements.get('big')), ['0.0.0.0-9.255.255.255', '11.0.0.0-255.255.255.255']);
  assert.deepEqual([...u.elements.get('vm')!], [['10.0.0.0/8', 'accept'], ['192.168.1.1', 'drop']]);
});

test('concatenations: each field as in a single-field set, an address range inside one listed as its prefix', () => {
  const t = parseTableListing(POLICY_LIKE)!;
  assert.deepEqual(keys(t.elements.get('p-1')), ['tcp . 80', 'udp . 81-90', 'tcp . 0-65535']);
  assert.deepEqual(keys(t.elements.get('n-1')), ['10.0.0.1 . tcp . 80-90', '10.244.1.5 . tcp . 80']);
  const u = parseTableListing(INTERVALS)!;
  assert.deepEqual(keys(u.elements.get('c')), ['10.0.0.0/24 . tcp . 80', '10.0.1.0/24 . udp . 0-1023', '10.0.2.1-10.0.2.3 . sctp . 5', '0.0.0.0/0 . tcp . 22']);
  assert.deepEqual(keys(u.elements.get('p')), ['tcp . 0-1023', 'udp . 53', 'sctp . 1-2']);
});

test('verdict maps, element lists wrapped over many lines, element timeouts, blocks of other kinds', () => {
  const t = parseTableListing(POLICY_LIKE)!;
  assert.deepEqual([...t.elements.get('ingress')!], [['10.0.0.1', 'goto ig-0a1b2c3d'], ['10.0.0.2', 'drop'], ['10.0.0.3', 'accept']]);
  const w = parseTableListing(WRAPPED)!;
  assert.deepEqual(w.foreign, ['counter cnt']);
  const big = w.elements.get('big')!;
  assert.equal(big.size, 41);
  assert.equal(big.get('10.1.0.40'), 'goto c1');
  assert.equal(big.get('10.1.1.1'), 'drop');
  assert.deepEqual([...w.elements.get('aff')!], [['10.244.0.5 . 10.96.1.1 . tcp . 80', '10.244.1.10 . 8080']], 'timeout and expires are not the key');
  assert.deepEqual(w.blocks.find((b) => b.name === 'aff')!.body,
    ['type ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service', 'size 65535', 'flags dynamic,timeout', 'timeout 3h']);
  assert.deepEqual(w.blocks.find((b) => b.name === 'c1')!.body, [], 'an empty chain');
});

test('the listing form rendered from the parsed blocks is the listing without its elements', () => {
  for (const text of [POLICY_LIKE, INTERVALS]) {
    const t = parseTableListing(text)!;
    const table: NftTable = { family: t.family, name: t.name, blocks: t.blocks, elements: t.elements };
    assert.equal(renderTable(table, 'listing'), splitListing(text).skeleton);
    assert.ok(sameBlocks(renderTable({ ...table, blocks: [...t.blocks].reverse() }, 'listing'), splitListing(text).skeleton), 'blocks in any order');
  }
});

test('the input form: blocks as nft -f takes them, then one add element line per set', () => {
  const table: NftTable = {
    family: 'inet', name: 'x',
    blocks: [
      { kind: 'set', name: 's', body: ['type ipv4_addr', 'flags interval'] },
      { kind: 'chain', name: 'c', body: ['meta l4proto tcp update @m { ip saddr : ip daddr }'], listing: ['update @m { ip saddr : ip daddr }'] },
    ],
    elements: new Map([['s', new Map([['10.0.0.0/24', ''], ['10.0.1.1', '']])], ['empty', new Map()]]),
  };
  assert.equal(renderTable(table), [
    'table inet x {', '\tset s {', '\t\ttype ipv4_addr', '\t\tflags interval', '\t}', '\tchain c {', '\t\tmeta l4proto tcp update @m { ip saddr : ip daddr }', '\t}', '}',
    'add element inet x s { 10.0.0.0/24, 10.0.1.1 }', '',
  ].join('\n'));
  assert.match(renderTable(table, 'listing'), /\t\tupdate @m \{ ip saddr : ip daddr \}\n/);
});

test('element lists and one table cut from a ruleset', () => {
  assert.deepEqual(parseElements('10.0.0.1 . tcp . 80-90 : goto ig-0a1b2c3d, 10.0.0.0/24,  tcp . 81-90 '),
    [['10.0.0.1 . tcp . 80-90', 'goto ig-0a1b2c3d'], ['10.0.0.0/24', ''], ['tcp . 81-90', '']]);
  const ruleset = `${INTERVALS}${POLICY_LIKE}`;
  assert.equal(tableBlock(ruleset, 'table inet t {'), POLICY_LIKE);
  assert.equal(tableBlock(ruleset, 'table ip u {'), INTERVALS);
  assert.equal(tableBlock(ruleset, 'table ip t {'), undefined);
});

test('formatRange spells an address range as nft lists an interval element', () => {
  const range = (a: string, b: string) => ({ family: addressValue(a)!.family, first: addressValue(a)!.value, last: addressValue(b)!.value });
  const cases: Array<[string, string, string]> = [
    ['10.0.2.0', '10.0.3.255', '10.0.2.0/23'], ['192.168.0.0', '192.168.0.127', '192.168.0.0/25'],
    ['10.0.1.1', '10.0.1.5', '10.0.1.1-10.0.1.5'], ['10.1.0.7', '10.1.0.7', '10.1.0.7'],
    ['0.0.0.0', '255.255.255.255', '0.0.0.0/0'], ['0.0.0.0', '9.255.255.255', '0.0.0.0-9.255.255.255'],
    ['11.0.0.0', '255.255.255.255', '11.0.0.0-255.255.255.255'], ['10.0.0.0', '10.0.0.9', '10.0.0.0-10.0.0.9'],
    ['fd00::', 'fd00::ffff:ffff:ffff:ffff', 'fd00::/64'], ['fd01::1', 'fd01::5', 'fd01::1-fd01::5'],
  ];
  for (const [a, b, want] of cases) assert.equal(formatRange(range(a, b)), want, `${a}-${b}`);
});
