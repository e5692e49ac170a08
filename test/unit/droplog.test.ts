// The drop log's pure parts: the reader's lines, a record made into a named event, its text, the file
// bounded by rotation and read back oldest first; and the rendered log rules accepted by the nft fake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseReaderLine, type NflogRecord } from '../../src/droplog/record.js';
import { chainOfPrefix, formatDropEvent, inNamespace, parseDropEvent, toDropEvent, type EventContext } from '../../src/droplog/event.js';
import { DropLogWriter, dropLogMark, followDropLog, readDropLog } from '../../src/droplog/file.js';
import { until } from '../helpers/until.js';
import { PolicyRenderer } from '../../src/dataplane/policy/renderer.js';
import { FakeNft } from '../../src/dataplane/nft/fake.js';
import { NftTableApplier } from '../../src/dataplane/nft/applier.js';
import { namespace, pod, policy } from '../helpers/policy-objects.js';

const record = (o: Partial<NflogRecord>): NflogRecord => ({ time: Date.UTC(2026, 11, 6, 21, 30), prefix: 'flatnet-drop ig-0123456789ab', family: 4, proto: 'tcp',
  src: '10.244.2.5', dst: '10.244.1.9', sport: 40000, dport: 80, ...o });
const pods: Record<string, string> = { '10.244.2.5': 'y/client', '10.244.1.9': 'x/web' };
const ctx: EventContext = {
  node: 'node-1',
  groups: new Map([['ig-0123456789ab', { direction: 'ingress', policies: ['x/default-deny'] }], ['eg-0123456789ab', { direction: 'egress', policies: ['y/a', 'y/b'] }]]),
  podAt: (ip) => pods[ip],
};

test('reader lines: ready, lost, a packet with its fields; anything else is not a line of the reader', () => {
  assert.deepEqual(parseReaderLine('{"ready":true}'), { kind: 'ready' });
  assert.deepEqual(parseReaderLine('{"lost":true}'), { kind: 'lost' });
  const l = parseReaderLine('{"time":1,"prefix":"flatnet-drop not-syn","family":4,"src":"10.0.0.1","dst":"10.0.0.2","proto":"tcp","sport":1,"dport":2,"tcpflags":16,"outdev":3}');
  assert.equal(l?.kind, 'packet');
  assert.deepEqual(l?.kind === 'packet' && l.record, { time: 1, prefix: 'flatnet-drop not-syn', family: 4, proto: 'tcp', src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2,
    tcpflags: 16, icmptype: undefined, indev: undefined, outdev: 3 });
  assert.equal(parseReaderLine('flatnet-nflog-read: recv: oops'), undefined);
  assert.equal(parseReaderLine('{"prefix":"x"}'), undefined, 'no time');
});

test('a default-deny drop names both pods, the direction and the isolating policy', () => {
  const e = toDropEvent(record({}), ctx)!;
  assert.deepEqual({ ...e }, {
    time: '2026-12-06T21:30:00.000Z', node: 'node-1', proto: 'tcp', chain: 'ig-0123456789ab', direction: 'ingress', policies: ['x/default-deny'],
    src: { ip: '10.244.2.5', port: 40000, pod: 'y/client' }, dst: { ip: '10.244.1.9', port: 80, pod: 'x/web' },
    reason: 'ingress to x/web isolated by x/default-deny; no policy allows',
  });
  assert.equal(formatDropEvent(e), '2026-12-06T21:30:00.000Z node-1 DROP tcp y/client 10.244.2.5:40000 -> x/web 10.244.1.9:80: ingress to x/web isolated by x/default-deny; no policy allows');
  assert.deepEqual(parseDropEvent(JSON.stringify(e)), e);
  assert.ok(inNamespace(e, 'x') && inNamespace(e, 'y') && !inNamespace(e, 'z'));
});

test('egress names the sending pod; ICMP has no ports; an address no pod holds stays an address', () => {
  const e = toDropEvent(record({ prefix: 'flatnet-drop eg-0123456789ab\0', proto: 'icmp', sport: undefined, dport: undefined, dst: '192.0.2.1' }), ctx)!;
  assert.equal(formatDropEvent(e), '2026-12-06T21:30:00.000Z node-1 DROP icmp y/client 10.244.2.5 -> 192.0.2.1: egress from y/client isolated by y/a, y/b; no policy allows');
  assert.equal(e.direction, 'egress');
});

test('the not-a-SYN drop, a chain gone from the table, and a prefix that is not flatnet\'s', () => {
  const s = toDropEvent(record({ prefix: 'flatnet-drop not-syn' }), ctx)!;
  assert.equal(s.direction, undefined);
  assert.match(s.reason, /^not a SYN/);
  assert.match(toDropEvent(record({ prefix: 'flatnet-drop ig-ffffffffffff' }), ctx)!.reason, /ig-ffffffffffff, a policy group this agent no longer has/);
  assert.equal(toDropEvent(record({ prefix: 'someone else' }), ctx), undefined);
  assert.equal(chainOfPrefix('flatnet-drop ig-1'), 'ig-1');
});

test('the file: rotated past its size into drops.log.1, read back oldest first, never more than two files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'droplog-'));
  try {
    const path = join(dir, 'drops.log');
    const w = new DropLogWriter(path, 2000);
    const events = Array.from({ length: 30 }, (_, i) => toDropEvent(record({ sport: 1000 + i }), ctx)!);
    for (const e of events) w.append(e);
    assert.ok(statSync(path).size <= 2000 && statSync(`${path}.1`).size <= 2000);
    const back = readDropLog(path);
    assert.ok(back.length > 0 && back.length < 30, `the oldest are gone: ${back.length}`);
    assert.deepEqual(back, events.slice(30 - back.length), 'the newest, in order');
    // A writer started on an existing file goes on from its size.
    new DropLogWriter(path, 2000).append(events[0]);
    assert.deepEqual(readDropLog(path).at(-1), events[0]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the rendered log rules go through the nft fake, and a second sync changes nothing', async () => {
  const r = new PolicyRenderer();
  const input = { nodeName: 'node-1', pods: [pod('x', 'a', { ip: '10.244.1.9' })], namespaces: [namespace('x')],
    policies: [policy('x', 'deny', { policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] })], ipv6: false };
  const nft = new FakeNft();
  const applier = new NftTableApplier(nft, 'inet', 'flatnet-policy');
  await applier.sync(r.render(input));
  applier.forget();
  const again = await applier.sync(r.render(input));
  assert.equal(again.operations, 0, 'the listing of the log rules reads back as written');
  assert.equal(r.groups.size, 2);
});

test('following: from a mark, the events appended after it, across a rotation; reading stops at the mark', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'droplog-'));
  const events = Array.from({ length: 12 }, (_, i) => toDropEvent(record({ sport: 2000 + i }), ctx)!);
  const path = join(dir, 'drops.log');
  const w = new DropLogWriter(path, 1500);
  w.append(events[0]);
  const mark = dropLogMark(path);
  w.append(events[1]);
  assert.deepEqual(readDropLog(path, mark), [events[0]]);
  const seen: typeof events = [];
  const stop = followDropLog(path, (e) => seen.push(e), mark, 5);
  try {
    // One at a time: a follower keeps up with one rotation between its reads, not two.
    for (const [i, e] of events.slice(2).entries()) {
      w.append(e);
      await until(`event ${i + 2} followed`, () => seen.length >= i + 2, 10_000, 10);
    }
    assert.deepEqual(seen, events.slice(1));
    assert.ok(dropLogMark(`${path}.1`), 'the log rotated on the way');
  } finally { stop(); rmSync(dir, { recursive: true, force: true }); }
});
