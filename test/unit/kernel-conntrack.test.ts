// conntrack -L lines (conntrack-tools 1.4.7, captured in a namespace) into typed entries: TCP with a
// state and flags, UDP without, ICMP's type/code/id, the extended form's family prefix, IPv6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConntrackLine } from '../../src/kernel/conntrack.js';

test('conntrack lines: default and extended output, TCP, UDP, ICMP, IPv6; other lines are not entries', () => {
  assert.deepEqual(parseConntrackLine('tcp      6 59 ESTABLISHED src=10.0.0.2 dst=10.96.0.51 sport=40000 dport=80 [UNREPLIED] src=10.244.1.6 dst=10.0.0.2 sport=8080 dport=40000 [ASSURED] mark=0 use=1'), {
    protocol: 'tcp', timeout: 59, state: 'ESTABLISHED',
    orig: { src: '10.0.0.2', dst: '10.96.0.51', sport: 40000, dport: 80 },
    reply: { src: '10.244.1.6', dst: '10.0.0.2', sport: 8080, dport: 40000 },
    flags: ['UNREPLIED', 'ASSURED'], mark: 0,
  });
  const udp = 'udp      17 29 src=10.0.0.1 dst=10.96.0.50 sport=1234 dport=53 [UNREPLIED] src=10.244.1.5 dst=10.0.0.1 sport=5353 dport=1234 mark=0 use=1';
  assert.deepEqual(parseConntrackLine(udp), {
    protocol: 'udp', timeout: 29,
    orig: { src: '10.0.0.1', dst: '10.96.0.50', sport: 1234, dport: 53 },
    reply: { src: '10.244.1.5', dst: '10.0.0.1', sport: 5353, dport: 1234 },
    flags: ['UNREPLIED'], mark: 0,
  });
  assert.deepEqual(parseConntrackLine(`ipv4     2 ${udp}`), parseConntrackLine(udp), 'extended output: the same entry');
  assert.deepEqual(parseConntrackLine('icmp     1 29 src=10.9.0.1 dst=10.9.0.1 type=8 code=0 id=19082 src=10.9.0.1 dst=10.9.0.1 type=0 code=0 id=19082 mark=0 use=1'), {
    protocol: 'icmp', timeout: 29,
    orig: { src: '10.9.0.1', dst: '10.9.0.1', icmp: { type: 8, code: 0, id: 19082 } },
    reply: { src: '10.9.0.1', dst: '10.9.0.1', icmp: { type: 0, code: 0, id: 19082 } },
    flags: [], mark: 0,
  });
  const v6 = parseConntrackLine('ipv6     10 icmpv6   58 29 src=fd00::1 dst=fd00::1 type=128 code=0 id=19085 src=fd00::1 dst=fd00::1 type=129 code=0 id=19085 mark=0 use=1');
  assert.equal(v6?.protocol, 'icmpv6');
  assert.deepEqual(v6?.reply.icmp, { type: 129, code: 0, id: 19085 });
  for (const line of ['', 'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.']) assert.equal(parseConntrackLine(line), undefined);
});
