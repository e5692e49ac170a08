// Decoding nft set elements from the kernel's bytes into the text nft prints: each field of a
// concatenation padded to 4 bytes, ports in network order, numgen values in host order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFields, decodeVerdict } from '../../src/kernel/nft-elements.js';

test('decodeFields: concatenations as nft prints them; a length that does not fit is refused', () => {
  assert.equal(decodeFields('0a601eac0600000000500000', ['ipv4_addr', 'inet_proto', 'inet_service']), '10.96.30.172 . tcp . 80');
  assert.equal(decodeFields('1100000075300000' + '02000000', ['inet_proto', 'inet_service', 'integer32']), 'udp . 30000 . 2');
  assert.equal(decodeFields('0af409da0af409da', ['ipv4_addr', 'ipv4_addr']), '10.244.9.218 . 10.244.9.218');
  assert.equal(decodeFields('84000000' + '00500000', ['inet_proto', 'inet_service']), 'sctp . 80');
  assert.throws(() => decodeFields('0a601eac06000000', ['ipv4_addr', 'inet_proto', 'inet_service']), /too short/);
  assert.throws(() => decodeFields('0a601eac0600000000500000ff', ['ipv4_addr', 'inet_proto', 'inet_service']), /13 bytes, not 12/);
});

test('decodeVerdict: goto, jump and plain verdicts; an unknown code is refused', () => {
  assert.equal(decodeVerdict('v:-4:pick-3'), 'goto pick-3');
  assert.equal(decodeVerdict('v:-3:aff-10800'), 'jump aff-10800');
  assert.equal(decodeVerdict('v:0:'), 'drop');
  assert.equal(decodeVerdict('v:1:'), 'accept');
  assert.throws(() => decodeVerdict('v:7:'), /not one flatnet writes/);
});
